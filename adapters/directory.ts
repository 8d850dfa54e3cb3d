/**
 * The directory port (Windows / Active Directory credentials) and its LDAP implementation.
 *
 * The gateway calls `Directory.authenticate(login, password)` and gets plain data back:
 * either the person the directory vouches for, or a generic refusal. The LDAP
 * implementation runs on `ldapts` (maintained, promise-based; it replaced ldapauth-fork,
 * whose ldapjs is decommissioned upstream): on one short-lived connection per attempt it
 * binds as the service account, searches by sAMAccountName or userPrincipalName under
 * the search base (scope sub), then binds as the entry found to check the password.
 *
 * Rules kept here, whatever the caller does:
 *   - an empty login, or an empty / whitespace-only password, is refused BEFORE any
 *     connection is opened (an LDAP simple bind with an empty password is an anonymous
 *     bind that "succeeds");
 *   - the login is escaped (RFC 4515, ldapts' Filter.escape) before it goes into the
 *     filter, so `*` or `)(` cannot widen the search;
 *   - unknown users, users outside the search base, wrong passwords, ambiguous logins
 *     and disabled accounts (userAccountControl & 2, checked before the user bind) all
 *     get the same `invalid_credentials`;
 *   - a directory that is down, slow or refuses the service bind gives `unavailable`
 *     within `connectTimeoutMs + timeLimitMs`, never a hang;
 *   - the service bind credentials and the user's password are never logged;
 *   - the entry's objectGUID (AD's stable key for a person) is returned when the
 *     directory has one, in AD's string form;
 *   - a down-level logon name (`CORP\jdoe`) is searched as its user part (`jdoe`): no
 *     sAMAccountName or UPN holds a backslash;
 *   - a caller's `admit` hook sees the entry the search found before its password is
 *     tried (rate limits keyed on the person, not on how the login was spelled), and may
 *     refuse the attempt (`refused`) without a bind.
 *
 * Each authentication uses its own client and connection, so a user bind on one login
 * never shares a connection with another login.
 *
 *   const directory = createLdapDirectory({ url: 'ldaps://dc1.corp.example', bindDn, bindCredentials,
 *     searchBase: 'ou=people,dc=corp,dc=example', connectTimeoutMs: 3000, timeLimitMs: 5000 });
 *   const result = await directory.authenticate('jdoe', password);
 *   if (result.ok) signIn(result.user.email);
 */
import { Client, Filter, FilterParser, InvalidCredentialsError, type Entry } from 'ldapts';
import type { ConnectionOptions } from 'node:tls';

export interface DirectoryUser {
  /** Distinguished name of the entry that authenticated. */
  dn: string;
  /** The login as the person typed it (trimmed). */
  login: string;
  /** The entry's `mail`, or '' when it has none (the email policy then refuses it as invalid). */
  email: string;
  /** displayName, else cn, else sAMAccountName. */
  name: string;
  sAMAccountName: string;
  userPrincipalName: string;
  /**
   * The entry's objectGUID in AD's string form ('3f2504e0-4f89-11d3-9a0c-0305e82c3301':
   * the first three groups little-endian, as Windows shows it), or null when the entry
   * has none (plain OpenLDAP) or it is not 16 bytes.
   */
  objectGuid: string | null;
}

/** `refused`: the caller's `admit` hook said no (no bind was attempted). */
export type DirectoryFailureReason = 'invalid_credentials' | 'unavailable' | 'refused';

export type DirectoryResult = { ok: true; user: DirectoryUser } | { ok: false; reason: DirectoryFailureReason };

/** The entry a search found, as the `admit` hook sees it. */
export interface FoundEntry {
  dn: string;
  objectGuid: string | null;
}

export interface AuthenticateOptions {
  /**
   * Called once the search found exactly one usable entry, before the password is tried
   * against it; resolving false refuses the attempt without a bind. A rejection is the
   * caller's failure and rejects `authenticate` with it.
   */
  admit?(entry: FoundEntry): Promise<boolean>;
}

export interface Directory {
  authenticate(login: string, password: string, options?: AuthenticateOptions): Promise<DirectoryResult>;
  close(): Promise<void>;
}

export interface LdapDirectoryConfig {
  /** ldap:// or ldaps:// URL of the directory. */
  url: string;
  /** Service account DN used to search (never logged). */
  bindDn: string;
  /** Service account password (never logged). */
  bindCredentials: string;
  /** Users are searched under this DN only (scope sub). */
  searchBase: string;
  /**
   * Filter with `{{login}}` (or passport-ldapauth's `{{username}}`) where the escaped
   * login goes. Default: '(|(sAMAccountName={{login}})(userPrincipalName={{login}}))'.
   */
  searchFilter?: string;
  /** Bound on opening the TCP/TLS connection. */
  connectTimeoutMs: number;
  /** Bound on each LDAP operation; the whole authentication ends within connectTimeoutMs + timeLimitMs. */
  timeLimitMs: number;
  /** TLS options for ldaps:// (CA bundle, servername...). */
  tlsOptions?: ConnectionOptions;
}

/** The subset of a pino-style logger this module uses. */
export interface DirectoryLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const DEFAULT_SEARCH_FILTER = '(|(sAMAccountName={{login}})(userPrincipalName={{login}}))';

/** userAccountControl flag ACCOUNTDISABLE. */
const UAC_ACCOUNT_DISABLE = 2;
const MAX_LOGIN_LENGTH = 256;
const MAX_PASSWORD_LENGTH = 1024;
const SEARCH_ATTRIBUTES = ['mail', 'displayName', 'cn', 'sAMAccountName', 'userPrincipalName', 'userAccountControl', 'objectGUID'];
/** Binary attributes: returned as Buffers, not decoded as UTF-8. */
const BINARY_ATTRIBUTES = ['objectGUID'];
const GUID_BYTES = 16;

const INVALID: DirectoryResult = { ok: false, reason: 'invalid_credentials' };
const UNAVAILABLE: DirectoryResult = { ok: false, reason: 'unavailable' };
const REFUSED: DirectoryResult = { ok: false, reason: 'refused' };

/** The caller's admit hook failed: carried out of verify() and rethrown by authenticate(). */
class AdmitFailed {
  readonly cause: unknown;
  constructor(cause: unknown) {
    this.cause = cause;
  }
}

/**
 * The name to search for: a down-level logon name `DOMAIN\user` becomes `user`.
 *
 *   searchName('CORP\\jdoe') === 'jdoe'
 */
export function searchName(login: string): string {
  const slash = login.lastIndexOf('\\');
  return slash >= 0 && slash < login.length - 1 && !login.includes('@') ? login.slice(slash + 1) : login;
}

/**
 * Escapes a value for use inside an LDAP filter assertion (RFC 4515 section 3):
 * `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`.
 *
 *   escapeFilterValue('admin)(|(uid=*') === 'admin\\29\\28|\\28uid=\\2a'
 */
export function escapeFilterValue(value: string): string {
  return Filter.escape(value);
}

/** Puts the escaped login into the filter template (`{{login}}` or `{{username}}`). */
export function buildSearchFilter(template: string, login: string): string {
  const escaped = escapeFilterValue(login);
  return template.replace(/\{\{(?:login|username)\}\}/g, () => escaped);
}

/** The identity issuer the store records for people from this directory. */
export function ldapIssuer(config: Pick<LdapDirectoryConfig, 'url' | 'searchBase'>): string {
  return `ldap:${config.url}|${config.searchBase}`;
}

/** Refuses input that must never reach a bind: empty login, empty or whitespace-only password, absurd lengths. */
export function isAcceptableCredentialInput(login: string, password: string): boolean {
  if (typeof login !== 'string' || typeof password !== 'string') return false;
  const trimmed = login.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_LOGIN_LENGTH) return false;
  if (password.trim().length === 0 || password.length > MAX_PASSWORD_LENGTH) return false;
  return true;
}

/** True when the entry's userAccountControl has ACCOUNTDISABLE set, or is present but unreadable (fail closed). */
export function isDisabledEntry(entry: Record<string, unknown>): boolean {
  const raw = textValue(attribute(entry, 'userAccountControl'));
  if (raw === '') return false;
  if (!/^-?\d+$/.test(raw)) return true;
  return (Number(raw) & UAC_ACCOUNT_DISABLE) !== 0;
}

/**
 * AD's string form of a 16-byte GUID: Data1, Data2 and Data3 are little-endian, Data4
 * is as stored. Null for anything that is not 16 bytes.
 *
 *   guidToString(Buffer.from('e004253f894fd3119a0c0305e82c3301', 'hex')) === '3f2504e0-4f89-11d3-9a0c-0305e82c3301'
 */
export function guidToString(bytes: Buffer): string | null {
  if (bytes.length !== GUID_BYTES) return null;
  const hex = (from: number, to: number, reverse = false) => {
    const part = [...bytes.subarray(from, to)];
    return (reverse ? part.reverse() : part).map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10), hex(10, 16)].join('-');
}

/** Creates the LDAP-backed directory. Opens no connection until `authenticate` is called. */
export function createLdapDirectory(config: LdapDirectoryConfig, logger?: DirectoryLogger): Directory {
  validateConfig(config);
  const template = config.searchFilter ?? DEFAULT_SEARCH_FILTER;
  const live = new Set<Client>();
  let closed = false;

  async function authenticate(login: string, password: string, options: AuthenticateOptions = {}): Promise<DirectoryResult> {
    if (closed) return UNAVAILABLE;
    if (!isAcceptableCredentialInput(login, password)) return INVALID;
    const trimmedLogin = login.trim();
    const filter = parseFilter(buildSearchFilter(template, searchName(trimmedLogin)));
    if (!filter) {
      logger?.warn({ code: 'directory_filter_invalid' }, 'search filter did not parse; login refused');
      return INVALID;
    }
    const client = new Client({
      url: config.url,
      connectTimeout: config.connectTimeoutMs,
      timeout: config.timeLimitMs,
      ...(config.tlsOptions ? { tlsOptions: config.tlsOptions } : {}),
    });
    live.add(client);
    try {
      const attempt = verify(client, config, filter, trimmedLogin, password, options, logger);
      const result = await withDeadline<DirectoryResult | AdmitFailed>(attempt, config.connectTimeoutMs + config.timeLimitMs, () => {
        logger?.warn({ code: 'directory_timeout' }, 'directory did not answer in time');
        return UNAVAILABLE;
      });
      if (result instanceof AdmitFailed) throw result.cause;
      return result;
    } finally {
      live.delete(client);
      void closeQuietly(client);
    }
  }

  async function close(): Promise<void> {
    closed = true;
    await Promise.all([...live].map((client) => closeQuietly(client)));
    live.clear();
  }

  return { authenticate, close };
}

function validateConfig(config: LdapDirectoryConfig): void {
  if (!/^ldaps?:\/\//i.test(config.url)) throw new Error('directory_config_invalid: url must start with ldap:// or ldaps://');
  if (!config.searchBase) throw new Error('directory_config_invalid: searchBase is required');
  const template = config.searchFilter ?? DEFAULT_SEARCH_FILTER;
  if (!/\{\{(?:login|username)\}\}/.test(template)) {
    throw new Error('directory_config_invalid: searchFilter must contain {{login}}');
  }
  if (!parseFilter(buildSearchFilter(template, 'probe'))) {
    throw new Error('directory_config_invalid: searchFilter is not a valid LDAP filter (RFC 4515)');
  }
  for (const key of ['connectTimeoutMs', 'timeLimitMs'] as const) {
    if (!Number.isFinite(config[key]) || config[key] <= 0) throw new Error(`directory_config_invalid: ${key} must be a positive number`);
  }
}

function parseFilter(filter: string): Filter | null {
  try {
    return FilterParser.parseString(filter);
  } catch {
    return null;
  }
}

/** Which step a failure came from decides whose fault it is. */
type Step = 'service_bind' | 'search' | 'user_bind';

/** Service bind, search, checks, user bind. Never rejects: every failure becomes a result. */
async function verify(
  client: Client, config: LdapDirectoryConfig, filter: Filter, login: string, password: string, options: AuthenticateOptions, logger?: DirectoryLogger,
): Promise<DirectoryResult | AdmitFailed> {
  let step: Step = 'service_bind';
  try {
    await client.bind(config.bindDn, config.bindCredentials);
    step = 'search';
    const { searchEntries } = await client.search(config.searchBase, {
      scope: 'sub',
      filter,
      attributes: SEARCH_ATTRIBUTES,
      explicitBufferAttributes: BINARY_ATTRIBUTES,
      // Two are enough to know a login is ambiguous.
      sizeLimit: 2,
      timeLimit: Math.max(1, Math.ceil(config.timeLimitMs / 1000)),
    });
    if (searchEntries.length === 0) return INVALID;
    if (searchEntries.length > 1) {
      logger?.warn({ code: 'directory_ambiguous_login' }, 'login matched several directory entries');
      return INVALID;
    }
    const entry = searchEntries[0]!;
    if (isDisabledEntry(entry)) return INVALID;
    if (options.admit) {
      let admitted: boolean;
      try {
        admitted = await options.admit({ dn: entry.dn, objectGuid: guidOf(entry) });
      } catch (err) {
        return new AdmitFailed(err);
      }
      if (!admitted) return REFUSED;
    }
    step = 'user_bind';
    await client.bind(entry.dn, password);
    return { ok: true, user: toDirectoryUser(entry, login) };
  } catch (error) {
    return classifyError(error, step, logger);
  }
}

/**
 * Wrong credentials at the user bind are the person's (invalid_credentials); at the
 * service bind they are a misconfiguration, and anything else (refused connection,
 * timeout, busy server, missing search base) is the directory's: both `unavailable`.
 */
function classifyError(error: unknown, step: Step, logger?: DirectoryLogger): DirectoryResult {
  if (error instanceof InvalidCredentialsError) {
    if (step === 'user_bind') return INVALID;
    logger?.error({ code: 'directory_service_bind_failed' }, 'directory refused the service account bind');
    return UNAVAILABLE;
  }
  const { name, code, message } = error as { name?: string; code?: unknown; message?: string };
  logger?.warn({ code: 'directory_unavailable', err: { name, ldapCode: code, message, step } }, 'directory unavailable');
  return UNAVAILABLE;
}

function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function guidOf(entry: Entry): string | null {
  const guid = attribute(entry, 'objectGUID');
  const guidBytes = Array.isArray(guid) ? guid[0] : guid;
  return Buffer.isBuffer(guidBytes) ? guidToString(guidBytes) : null;
}

function toDirectoryUser(entry: Entry, login: string): DirectoryUser {
  const sAMAccountName = textValue(attribute(entry, 'sAMAccountName'));
  return {
    dn: entry.dn,
    login,
    email: textValue(attribute(entry, 'mail')),
    name: textValue(attribute(entry, 'displayName')) || textValue(attribute(entry, 'cn')) || sAMAccountName || login,
    sAMAccountName,
    userPrincipalName: textValue(attribute(entry, 'userPrincipalName')),
    objectGuid: guidOf(entry),
  };
}

/** An attribute by name, case-insensitively (servers answer with the schema's spelling). */
function attribute(entry: Record<string, unknown>, name: string): unknown {
  if (name in entry) return entry[name];
  const lower = name.toLowerCase();
  const key = Object.keys(entry).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : entry[key];
}

/** ldapts gives single values as strings and multiple values as arrays; the first one counts. */
function textValue(value: unknown): string {
  if (Array.isArray(value)) return value.length > 0 ? String(value[0]) : '';
  if (value === undefined || value === null) return '';
  return String(value);
}

/** Unbinds and closes the socket; never throws (ldapts destroys the socket even when the unbind fails). */
async function closeQuietly(client: Client): Promise<void> {
  try {
    await client.unbind();
  } catch {
    // already gone
  }
}
