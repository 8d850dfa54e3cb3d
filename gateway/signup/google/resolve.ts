/**
 * What a verified Google identity is, as the one identity-resolution entry point of
 * every external source sees it (gateway/signup/external/): the issuer + subject as its
 * stable key, the address Google verified, and the `hd` claim that may prove the
 * address's domain (policies/sources.ts).
 *
 *   const outcome = await resolveExternal(ctx, googlePerson(verified), { proof: 'none' }, { ip });
 */
import type { ExternalPerson } from '../external/index.ts';
import type { VerifiedGoogle } from './result.ts';

export function googlePerson(verified: VerifiedGoogle): ExternalPerson {
  return {
    source: 'google',
    issuer: verified.issuer,
    subject: verified.subject,
    formerSubjects: [],
    email: verified.email,
    ...(verified.name ? { name: verified.name } : {}),
    ...(verified.hd ? { hostedDomain: verified.hd } : {}),
    via: 'google',
  };
}
