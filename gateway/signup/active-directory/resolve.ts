/**
 * What the directory vouches for, as the one identity-resolution entry point of every
 * external source sees it (gateway/signup/external/): a successful bind (the LDAP form)
 * or a valid signed assertion (the connector) is a person with a stable key, the
 * address the directory asserts (proven only inside the directory's own domains,
 * policies/sources.ts) and a name.
 *
 *   directory   issuer ldapIssuer(config), subject the entry's objectGUID; an entry
 *               without one (plain OpenLDAP) keeps its DN. Accounts linked by DN before
 *               identities moved to objectGUID are found by it and re-keyed.
 *   connector   issuer `ad-connector`, subject the assertion's `sub`
 *
 *   const outcome = await resolveExternal(ctx, directoryPerson(issuer, result.user), { proof: 'none' }, { ip });
 */
import type { DirectoryUser } from '../../../adapters/directory.ts';
import type { ExternalPerson } from '../external/index.ts';
import type { AdAssertion } from './assertion.ts';

export const AD_CONNECTOR_ISSUER = 'ad-connector';

export function directoryPerson(issuer: string, user: Pick<DirectoryUser, 'dn' | 'objectGuid' | 'email' | 'name'>): ExternalPerson {
  const dn = user.dn.trim().toLowerCase();
  const guid = user.objectGuid?.toLowerCase() ?? null;
  return {
    source: 'directory',
    issuer,
    subject: guid ?? dn,
    formerSubjects: guid ? [dn] : [],
    email: user.email,
    name: user.name,
    via: 'directory_bind',
  };
}

export function connectorPerson(assertion: Pick<AdAssertion, 'sub' | 'email' | 'name'>): ExternalPerson {
  return {
    source: 'connector',
    issuer: AD_CONNECTOR_ISSUER,
    subject: assertion.sub,
    formerSubjects: [],
    email: assertion.email,
    ...(assertion.name ? { name: assertion.name } : {}),
    via: 'signed_assertion',
  };
}
