/**
 * The directory port (Windows / Active Directory credentials) and its LDAP implementation.
 *
 * The gateway calls `Directory.authenticate(login, password)` and gets plain data back:
 * either the person the directory vouches for, or a generic refusal. The LDAP
 * implementation uses `ldapauth-fork` (the engine under passport-ldapauth, on ldapjs 2):
 * bind as the service account, search by sAMAccountName or userPrincipalName under the
 * search base (scope sub), bind as the user found to check the password.
 *
 * Rules kept here, whatever the caller does:
 *   - an empty login, or an empty / whitespace-only password, is refused BEFORE any
 *     connection is opened (an LDAP simple bind with an empty password is an anonymous
 *     bind that "succeeds");
 *   - the login is escaped (RFC 4515) before it goes into the filter, so `*` or `)(`
 *     cannot widen the search;
 *   - unknown users, users outside the search base, wrong passwords, ambiguous logins
 *     and disabled accounts (userAccountControl & 2) all get the same
 *     `invalid_credentials`;
 *   - a directory that is down, slow or refuses the service bind gives `unavailable`
 *     within `connectTimeoutMs + timeLimitMs`, never a hang;
 *   - the service bind credentials and the user's password are never logged.
 *
 * Each authentication uses its own short-lived LdapAuth (as passport-ldapauth does), so
 * a user bind on one login never shares a connection with another login.
 *
 *   const directory = createLdapDirectory({ url: 'ldaps://dc1.corp.example', bindDn, bindCredentials,
 *     searchBase: 'ou=people,dc=corp,dc=example', connectTimeoutMs: 3000, timeLimitMs: 5000 });
 *   const result = await directory.authenticate('jdoe', password);
 *   if (result.ok) signIn(result.user.email);
 */
import LdapAuth from 'ldapauth-fork';
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';

/**
 * ldapjs as ldapauth-fork itself resolves it, used only to parse filters up front:
 * ldapjs throws an invalid filter from inside a socket callback, which would be an
 * uncaught exception that kills the process.
 */
const ldapjs = createRequire(createRequire(import.meta.url).resolve('ldapauth-fork'))('ldapjs') as {
  parseFilter(filter: string): unknown;
};

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
}

export type DirectoryFailureReason = 'invalid_credentials' | 'unavailable';

export type DirectoryResult = { ok: true; user: DirectoryUser } | { ok: false; reason: DirectoryFailureReason };

export interface Directory {
  authenticate(login: string, password: string): Promise<DirectoryResult>;
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
const LDAP_INVALID_CREDENTIALS = 49;
const SEARCH_ATTRIBUTES = ['dn', 'mail', 'displayName', 'cn', 'sAMAccountName', 'userPrincipalName', 'userAccountControl'];

const INVALID: DirectoryResult = { ok: false, reason: 'invalid_credentials' };
const UNAVAILABLE: DirectoryResult = { ok: false, reason: 'unavailable' };

/**
 * Escapes a value for use inside an LDAP filter assertion (RFC 4515 section 3):
 * `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`.
 *
 *   escapeFilterValue('admin)(|(uid=*') === 'admin\\29\\28|\\28uid=\\2a'
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
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
  const raw = firstValue(entry['userAccountControl']);
  if (raw === '') return false;
  if (!/^-?\d+$/.test(raw)) return true;
  return (Number(raw) & UAC_ACCOUNT_DISABLE) !== 0;
}

/** Creates the LDAP-backed directory. Opens no connection until `authenticate` is called. */
export function createLdapDirectory(config: LdapDirectoryConfig, logger?: DirectoryLogger): Directory {
  validateConfig(config);
  const template = config.searchFilter ?? DEFAULT_SEARCH_FILTER;
  const live = new Set<LdapAuth>();
  let closed = false;

  async function authenticate(login: string, password: string): Promise<DirectoryResult> {
    if (closed) return UNAVAILABLE;
    if (!isAcceptableCredentialInput(login, password)) return INVALID;
    const trimmedLogin = login.trim();
    const filter = buildSearchFilter(template, trimmedLogin);
    if (!isParsableFilter(filter)) {
      logger?.warn({ code: 'directory_filter_invalid' }, 'search filter did not parse; login refused');
      return INVALID;
    }
    const auth = openAuth(config, filter);
    live.add(auth);
    try {
      const outcome = await withDeadline(runAuthenticate(auth, trimmedLogin, password), config.connectTimeoutMs + config.timeLimitMs);
      return toResult(outcome, auth, trimmedLogin, logger);
    } finally {
      live.delete(auth);
      void closeQuietly(auth, config.timeLimitMs);
    }
  }

  async function close(): Promise<void> {
    closed = true;
    await Promise.all([...live].map((auth) => closeQuietly(auth, config.timeLimitMs)));
    live.clear();
  }

  return { authenticate, close };
}

type AuthOutcome =
  | { kind: 'user'; entry: Record<string, unknown> }
  | { kind: 'error'; error: Error | string }
  | { kind: 'timeout' };

function validateConfig(config: LdapDirectoryConfig): void {
  if (!/^ldaps?:\/\//i.test(config.url)) throw new Error('directory_config_invalid: url must start with ldap:// or ldaps://');
  if (!config.searchBase) throw new Error('directory_config_invalid: searchBase is required');
  const template = config.searchFilter ?? DEFAULT_SEARCH_FILTER;
  if (!/\{\{(?:login|username)\}\}/.test(template)) {
    throw new Error('directory_config_invalid: searchFilter must contain {{login}}');
  }
  if (!isParsableFilter(buildSearchFilter(template, 'probe'))) {
    throw new Error('directory_config_invalid: searchFilter is not a valid LDAP filter (RFC 4515)');
  }
  for (const key of ['connectTimeoutMs', 'timeLimitMs'] as const) {
    if (!Number.isFinite(config[key]) || config[key] <= 0) throw new Error(`directory_config_invalid: ${key} must be a positive number`);
  }
}

function isParsableFilter(filter: string): boolean {
  try {
    ldapjs.parseFilter(filter);
    return true;
  } catch {
    return false;
  }
}

function openAuth(config: LdapDirectoryConfig, searchFilter: string): LdapAuth {
  const auth = new LdapAuth({
    url: config.url,
    bindDN: config.bindDn,
    bindCredentials: config.bindCredentials,
    searchBase: config.searchBase,
    searchScope: 'sub',
    // Already escaped and complete; ldapauth-fork's own placeholder is not used.
    searchFilter,
    searchAttributes: [...SEARCH_ATTRIBUTES],
    connectTimeout: config.connectTimeoutMs,
    timeout: config.timeLimitMs,
    reconnect: false,
    ...(config.tlsOptions ? { tlsOptions: config.tlsOptions } : {}),
  });
  // ldapjs emits connection errors as events; without a listener they would crash the
  // process. The same failure also reaches the authenticate callback (or the deadline).
  auth.on('error', () => {});
  return auth;
}

function runAuthenticate(auth: LdapAuth, login: string, password: string): Promise<AuthOutcome> {
  return new Promise((resolve) => {
    auth.authenticate(login, password, (error, user) => {
      if (error) resolve({ kind: 'error', error });
      else resolve({ kind: 'user', entry: (user ?? {}) as Record<string, unknown> });
    });
  });
}

function withDeadline(work: Promise<AuthOutcome>, ms: number): Promise<AuthOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<AuthOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function toResult(outcome: AuthOutcome, auth: LdapAuth, login: string, logger?: DirectoryLogger): DirectoryResult {
  if (outcome.kind === 'timeout') {
    logger?.warn({ code: 'directory_timeout' }, 'directory did not answer in time');
    return UNAVAILABLE;
  }
  if (outcome.kind === 'error') return classifyError(outcome.error, auth, logger);
  const entry = outcome.entry;
  if (isDisabledEntry(entry)) return INVALID;
  return { ok: true, user: toDirectoryUser(entry, login) };
}

/**
 * Maps ldapauth-fork's failures. It reports "no such user" and "unexpected number of
 * matches" as plain strings, bind failures as ldapjs errors (code 49 for bad
 * credentials), everything else (refused connection, timeout, server busy) as errors
 * we treat as unavailable. A code 49 while the service account is still unbound means
 * the SERVICE bind failed: that is a misconfiguration, reported as unavailable.
 */
function classifyError(error: Error | string, auth: LdapAuth, logger?: DirectoryLogger): DirectoryResult {
  if (typeof error === 'string') {
    if (error.startsWith('no such user')) return INVALID;
    if (error.startsWith('unexpected number of matches')) {
      logger?.warn({ code: 'directory_ambiguous_login' }, 'login matched several directory entries');
      return INVALID;
    }
    logger?.error({ code: 'directory_error' }, 'directory search failed');
    return UNAVAILABLE;
  }
  const ldapCode = (error as { code?: unknown }).code;
  if (ldapCode === LDAP_INVALID_CREDENTIALS) {
    const serviceBound = (auth as unknown as { _adminBound?: boolean })._adminBound;
    if (serviceBound === false) {
      logger?.error({ code: 'directory_service_bind_failed' }, 'directory refused the service account bind');
      return UNAVAILABLE;
    }
    return INVALID;
  }
  if (error.message === 'empty username' || error.message === 'no password given') return INVALID;
  logger?.warn({ code: 'directory_unavailable', err: { name: error.name, ldapCode, message: error.message } }, 'directory unavailable');
  return UNAVAILABLE;
}

function toDirectoryUser(entry: Record<string, unknown>, login: string): DirectoryUser {
  const sAMAccountName = firstValue(entry['sAMAccountName']);
  return {
    dn: firstValue(entry['dn']),
    login,
    email: firstValue(entry['mail']),
    name: firstValue(entry['displayName']) || firstValue(entry['cn']) || sAMAccountName || login,
    sAMAccountName,
    userPrincipalName: firstValue(entry['userPrincipalName']),
  };
}

/** ldapjs gives single values as strings and multiple values as arrays. */
function firstValue(value: unknown): string {
  if (Array.isArray(value)) return value.length > 0 ? String(value[0]) : '';
  if (value === undefined || value === null) return '';
  return String(value);
}

/**
 * Unbinds and then tears the sockets down. ldapauth-fork's close() only unbinds, which
 * leaves a socket open when the server never answers or a connect is still pending, so
 * the two ldapjs clients it holds are destroyed as well (bounded by `ms`).
 */
function closeQuietly(auth: LdapAuth, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      destroyClients(auth);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    try {
      auth.close(finish);
    } catch {
      finish();
    }
  });
}

function destroyClients(auth: LdapAuth): void {
  const clients = auth as unknown as { _adminClient?: { destroy?: () => void }; _userClient?: { destroy?: () => void } };
  for (const client of [clients._adminClient, clients._userClient]) {
    try {
      client?.destroy?.();
    } catch {
      // already gone
    }
  }
}
