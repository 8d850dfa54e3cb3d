/**
 * What Google's userinfo must say before anything else happens: a subject, a verified
 * address, and, with a hosted-domain rule, the right `hd` claim. Pure.
 *
 *   const claims = parseGoogleClaims(json);                       // null when malformed
 *   checkGoogleClaims(claims, 'corp.com')                         // { ok: false, reason: 'hosted_domain_mismatch' } ...
 */
import { z } from 'zod';
import { canonicalizeDomain } from '../../../policies/index.ts';

const userinfoSchema = z.object({
  sub: z.string().min(1).max(255),
  email: z.string().max(512).optional(),
  email_verified: z.unknown().optional(),
  name: z.string().max(512).optional(),
  hd: z.string().max(255).optional(),
});

export interface GoogleClaims {
  sub: string;
  email: string | undefined;
  emailVerified: boolean;
  name: string | undefined;
  hd: string | undefined;
}

export type GoogleClaimsCheck =
  | { ok: true }
  | { ok: false; reason: 'email_missing' | 'email_unverified' | 'hosted_domain_mismatch' };

/** Parses userinfo JSON; `email_verified` counts only when it is the boolean true. */
export function parseGoogleClaims(json: unknown): GoogleClaims | null {
  const parsed = userinfoSchema.safeParse(json);
  if (!parsed.success) return null;
  const u = parsed.data;
  return { sub: u.sub, email: u.email, emailVerified: u.email_verified === true, name: u.name, hd: u.hd };
}

/**
 * Only verified addresses; with a hosted-domain rule, the returned `hd` claim must be
 * that domain (the `hd` request parameter is a hint to Google, never trusted alone).
 *
 * @example checkGoogleClaims({ ...claims, hd: 'other.com' }, 'corp.com') // { ok: false, reason: 'hosted_domain_mismatch' }
 */
export function checkGoogleClaims(claims: GoogleClaims, hostedDomain: string | undefined): GoogleClaimsCheck {
  if (!claims.email) return { ok: false, reason: 'email_missing' };
  if (!claims.emailVerified) return { ok: false, reason: 'email_unverified' };
  if (hostedDomain) {
    const want = canonicalizeDomain(hostedDomain);
    const got = claims.hd ? canonicalizeDomain(claims.hd) : null;
    if (!want.ok || !got?.ok || want.domain !== got.domain) return { ok: false, reason: 'hosted_domain_mismatch' };
  }
  return { ok: true };
}
