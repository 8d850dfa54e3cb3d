/**
 * The issuer each external source's identities are recorded under, from configuration:
 * Google's GOOGLE_ISSUER, the directory's `ldap:<url>|<base>`, the connector's
 * `ad-connector`; and a subject as each source writes it (the directory's lower-cased).
 * The admin API links an identity from the console with these, so a console link and a
 * sign-in name the same key.
 *
 *   const key = identityKeyFor('directory', '3F2504E0-4F89-11D3-9A0C-0305E82C3301', config);   // { issuer: 'ldap:...', subject: '3f25...' } | null
 */
import { ldapIssuer } from '../../adapters/directory.ts';
import type { ExternalSource, IdentityKey } from '../../policies/index.ts';
import type { Config } from '../runtime/config.ts';
import { AD_CONNECTOR_ISSUER } from './active-directory/resolve.ts';
import { googleEnabled } from './google/index.ts';

type IssuerConfig = Pick<Config, 'GOOGLE_CLIENT_ID' | 'GOOGLE_CLIENT_SECRET' | 'GOOGLE_ISSUER' | 'LDAP_URL' | 'LDAP_SEARCH_BASE'>;

/** The source's identity key for `subject`, or null when the source is not configured here. */
export function identityKeyFor(source: ExternalSource, subject: string, config: IssuerConfig): IdentityKey | null {
  switch (source) {
    case 'google':
      return googleEnabled(config) ? { issuer: config.GOOGLE_ISSUER, subject } : null;
    case 'directory':
      return config.LDAP_URL && config.LDAP_SEARCH_BASE ? { issuer: ldapIssuer({ url: config.LDAP_URL, searchBase: config.LDAP_SEARCH_BASE }), subject: subject.trim().toLowerCase() } : null;
    case 'connector':
      return { issuer: AD_CONNECTOR_ISSUER, subject };
  }
}
