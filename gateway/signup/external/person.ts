/**
 * A person an external source vouches for (Google, the AD form, the AD connector), as
 * plain data that can wait in a flow while the person proves they own an account: the
 * source, its stable key (issuer + subject), earlier keys of the same person, and what
 * the source asserts (address, name, Google's `hd`).
 *
 *   const person: ExternalPerson = { source: 'directory', issuer, subject: guid, formerSubjects: [dn], email, name, via: 'directory_bind' };
 */
import { z } from 'zod';
import { EXTERNAL_SOURCES, type ExternalSource, type SignupMethod, type SourceClaims } from '../../../policies/index.ts';

export const ExternalPerson = z.object({
  source: z.enum(EXTERNAL_SOURCES as [ExternalSource, ...ExternalSource[]]),
  issuer: z.string().min(1).max(1024),
  subject: z.string().min(1).max(1024),
  /**
   * Subjects this person had under the same issuer before (the directory's DN, from
   * before identities were keyed by objectGUID): an account found by one is re-keyed.
   */
  formerSubjects: z.array(z.string().min(1).max(1024)).max(4).default([]),
  /** The address the source asserts, raw ('' when it has none). */
  email: z.string().max(1024),
  name: z.string().max(512).optional(),
  /** Google's `hd` claim. */
  hostedDomain: z.string().max(255).optional(),
  /** How the source proved the person (audit): `google`, `directory_bind`, `signed_assertion`. */
  via: z.string().max(64),
});
export type ExternalPerson = z.output<typeof ExternalPerson>;

/** The sign-up method of each source (the policy's name for it). */
export function methodOf(source: ExternalSource): Extract<SignupMethod, 'google' | 'activeDirectory'> {
  return source === 'google' ? 'google' : 'activeDirectory';
}

/** What the source claims, for proveAddress (Google's email_verified was checked at its callback). */
export function claimsOf(person: ExternalPerson): SourceClaims {
  if (person.source === 'google') return { source: 'google', email: person.email, emailVerified: true, hostedDomain: person.hostedDomain };
  return { source: person.source, email: person.email };
}

/** The `amr` value of each source in the ID token. */
export function amrOf(source: ExternalSource): string {
  return source === 'google' ? 'google' : 'ad';
}

/** How pages name the source. */
export function labelOf(source: ExternalSource): string {
  return source === 'google' ? 'Google' : 'your Windows account';
}
