/**
 * What each external source proves: policy, pure.
 *
 *   - Google proves an address only when `email_verified` is the boolean true, and
 *     proves membership of the address's domain (so it may join a company by domain)
 *     only when its `hd` claim (the Google Workspace the account belongs to) covers the
 *     address: `hd` equals the address's domain or is a parent of it at a label
 *     boundary. A personal Google account on a work address (no `hd`) proves the
 *     address but no company domain: in anyone mode it may sign up, joining no company.
 *   - The directory (the AD form and the AD connector alike) proves an address only
 *     inside the domains the admin lists as the directory's own
 *     (`policy.activeDirectory.provenDomains`, subdomains included at a label
 *     boundary); there it proves the domain too. Every other address it asserts counts
 *     as unverified: it joins no company and links to nothing without proof.
 *   - Whether the AD styles may sign anyone in at all is policies/access.ts
 *     `directorySignInAllowed` ("AD registration & authentication").
 *
 *   const proof = proveAddress({ source: 'google', email, emailVerified: true, hostedDomain: hd }, policy);
 *   const attempt = { method: 'google', email, emailVerified: proof.address, domainVerified: proof.domain };
 */
import { canonicalizeDomain, canonicalizeEmail } from './email.ts';
import { domainMatches } from './match.ts';
import type { ExternalSource } from './identity.ts';
import type { Policy, TraceEntry } from './types.ts';

/** What a source asserts about the person, raw (canonicalised here). */
export type SourceClaims =
  | { source: 'google'; email: unknown; emailVerified: boolean; hostedDomain?: unknown }
  | { source: 'directory' | 'connector'; email: unknown };

export interface AddressProof {
  /** The source proves the person controls this address. */
  address: boolean;
  /** The source proves the person belongs to the address's domain: they may join a company accepting it. */
  domain: boolean;
  /** One line saying what was proven and why (for simulate and the audit log). */
  trace: TraceEntry[];
}

/** The directory's own domains as saved; a policy stored before the setting existed has none. */
export function directoryDomains(policy: Pick<Policy, 'activeDirectory'>): readonly string[] {
  return policy.activeDirectory.provenDomains ?? [];
}

function proof(address: boolean, domain: boolean, detail: string): AddressProof {
  return { address, domain, trace: [{ rule: 'source_proof', result: address ? 'pass' : 'info', detail }] };
}

function proveGoogle(email: string, emailDomain: string, emailVerified: boolean, hostedDomain: unknown): AddressProof {
  if (emailVerified !== true) return proof(false, false, `google: email_verified is not true, so ${email} is unverified`);
  if (hostedDomain === undefined || hostedDomain === null || hostedDomain === '') {
    return proof(true, false, `google: email_verified proves ${email}; no hd claim (a personal account), so no company domain is proven`);
  }
  const hd = typeof hostedDomain === 'string' ? canonicalizeDomain(hostedDomain) : null;
  if (!hd?.ok) return proof(true, false, `google: email_verified proves ${email}; the hd claim is not a valid domain, so no company domain is proven`);
  if (domainMatches(hd.domain, emailDomain, true)) {
    return proof(true, true, `google: email_verified proves ${email}, and hd=${hd.domain} proves the domain ${emailDomain}`);
  }
  return proof(true, false, `google: email_verified proves ${email}; hd=${hd.domain} does not cover ${emailDomain}, so no company domain is proven`);
}

function proveDirectory(source: 'directory' | 'connector', email: string, emailDomain: string, policy: Pick<Policy, 'activeDirectory'>): AddressProof {
  const own = directoryDomains(policy);
  const covering = own.find((domain) => domainMatches(domain, emailDomain, true));
  if (covering !== undefined) return proof(true, true, `${source}: ${emailDomain} is within the directory's own domain ${covering}, so ${email} is proven`);
  const listed = own.length > 0 ? own.join(', ') : 'none listed';
  return proof(false, false, `${source}: ${emailDomain} is not among the directory's own domains (${listed}), so ${email} is unverified`);
}

/**
 * What the source proves about the address it asserts, under this policy.
 *
 * @example proveAddress({ source: 'google', email: 'bob@acme.com', emailVerified: true }, policy) // { address: true, domain: false, ... }
 * @example proveAddress({ source: 'directory', email: 'x@other.com' }, policyWithProvenDomains(['corp.com'])) // { address: false, domain: false, ... }
 */
export function proveAddress(claims: SourceClaims, policy: Pick<Policy, 'activeDirectory'>): AddressProof {
  const canonical = canonicalizeEmail(claims.email);
  if (!canonical.ok) return proof(false, false, `${claims.source}: the asserted address is not valid (${canonical.detail})`);
  if (claims.source === 'google') return proveGoogle(canonical.email, canonical.domain, claims.emailVerified, claims.hostedDomain);
  return proveDirectory(claims.source, canonical.email, canonical.domain, policy);
}

