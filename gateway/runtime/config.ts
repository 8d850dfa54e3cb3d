/**
 * Configuration: every environment variable Gatehouse reads, its default, and why.
 *
 * The table below IS the documentation (`.env.example` mirrors it). `loadConfig(env)`
 * validates everything at start with zod and throws a `ConfigError` whose lines each
 * name one variable and what is wrong with it; `gateway/main.ts` prints them and exits.
 * Contradictory settings (a production start with ephemeral keys, ...) stop the start too.
 *
 *   const config = loadConfig(process.env);
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { canonicalizeDomain, canonicalizeEmail } from '../../policies/email.ts';
import { signingAlgsOf } from './signing-algs.ts';

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: `must be a whole number between ${min} and ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `must be at least ${min}` }).max(max, { message: `must be at most ${max}` }));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `host:port[,host:port...]` (IPv6 as `[::1]:6379`) -> the list of nodes. */
const nodeList = z
  .string()
  .transform((v, ctx) => {
    const nodes: { host: string; port: number }[] = [];
    for (const entry of v.split(',').map((e) => e.trim()).filter(Boolean)) {
      const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[3]);
      if (!match || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of host:port (bad entry ${JSON.stringify(entry)})` });
        return z.NEVER;
      }
      nodes.push({ host: (match[1] ?? match[2])!, port });
    }
    if (nodes.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'must list at least one host:port' });
      return z.NEVER;
    }
    return nodes;
  });

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/** A domain, canonicalised by the one canonicaliser (so `Example.COM.` is `example.com`). */
const domain = z.string().transform((value, ctx) => {
  const result = canonicalizeDomain(value);
  if (result.ok) return result.domain;
  ctx.addIssue({ code: 'custom', message: 'must be a domain name such as example.com' });
  return z.NEVER;
});

/** A sender: `addr@domain` or `Display Name <addr@domain>`, one address, no line breaks. */
const mailbox = z.string().refine(
  (value) => {
    const match = /^(?:"?([^"<>\r\n]*)"?\s*<([^<>\s]+)>|([^<>\s"]+))$/.exec(value.trim());
    const address = match?.[2] ?? match?.[3];
    return address !== undefined && canonicalizeEmail(address).ok;
  },
  { message: 'must be an address such as no-reply@example.com, optionally as "Name <no-reply@example.com>"' },
);

/**
 * Every variable: schema (string in, typed value out) and default. Keep in step with
 * `.env.example`; `test/config.test.ts` checks that every key here is documented there.
 */
const schema = z.object({
  /** Environment. `production` refuses ephemeral signing/cookie keys, a plain-http issuer and the development aids. */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** TCP port the gateway listens on. */
  PORT: int(0, 65535).default(3000),
  /** Interface to bind. Loopback by default: expose it deliberately. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Public base URL (issuer). Every link in an email is built from it, never from the Host header. Default http://localhost:PORT. */
  ISSUER: url(['http:', 'https:']).optional(),
  /**
   * How many proxies in front of the gateway append to X-Forwarded-For (and set
   * X-Forwarded-Proto/-Host): 0 = none, the socket address is the client (default);
   * N = the client is the address the nearest trusted proxy saw, the N-th entry from the
   * right (Koa's `proxy` with `maxIpsCount = N`), so whatever a client writes to the left
   * of it is ignored. `false` means 0 and `true` means 1 (one balancer), for old configs.
   */
  TRUST_PROXY: z
    .string()
    .regex(/^(true|false|\d{1,2})$/, { message: 'must be the number of trusted proxy hops (0-10), or true (= 1) / false (= 0)' })
    .transform((v) => (v === 'true' ? 1 : v === 'false' ? 0 : Number(v)))
    .pipe(z.number().int().max(10, { message: 'must be at most 10 trusted proxy hops' }))
    .default(0),
  /**
   * Prometheus metrics on a port of their own (GET /metrics), never on PORT. Unset = off.
   * Bound to METRICS_HOST, loopback by default: let the scraper in deliberately.
   */
  METRICS_PORT: int(0, 65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /** Embedded store (no MONGODB_URI): the directory of the SQLite file `gatehouse.db`, owned by one process. Relative to the working directory. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** Durable store for several processes. Unset = the embedded SQLite file in DATA_DIR (one process, production included: the file is locked to its owner). */
  MONGODB_URI: url(['mongodb:', 'mongodb+srv:']).optional(),
  MONGODB_DB: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be 1-64 letters, digits, _ or -' }).default('gatehouse'),
  MONGODB_POOL_SIZE: int(1, 1000).default(20),
  /** Every MongoDB call answers within this bound, a hung server included: after it the request fails closed with 503. */
  MONGODB_TIMEOUT_MS: int(100, 120000).default(5000),
  /** OIDC state, rate-limit counters, policy broadcast: one Redis endpoint. Set at most one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES. */
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  /** Redis Sentinel: the Sentinels (host:port list) and the name of the master they watch. */
  REDIS_SENTINELS: nodeList.optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[\w.-]{1,128}$/, { message: 'must be 1-128 of letters, digits, _ . -' }).default('mymaster'),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /** Redis Cluster: some of its nodes (host:port list); the rest are discovered. */
  REDIS_CLUSTER_NODES: nodeList.optional(),
  /** Every Redis command answers within this many ms (a node that stopped answering); after it the request fails closed with 503. */
  REDIS_TIMEOUT_MS: int(100, 120000).default(2000),
  /** ACL user and password of the Redis data nodes, for Sentinel and Cluster (REDIS_URL carries its own). */
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** TLS to the Redis nodes (and the Sentinels), for Sentinel and Cluster (REDIS_URL says rediss://). */
  REDIS_TLS: bool.default(false),

  /** Bootstrap admin account. Unset = one generated and printed once at first start. */
  ADMIN_EMAIL: z.string().min(3).optional(),
  ADMIN_PASSWORD: z.string().min(12, { message: 'must be at least 12 characters' }).optional(),
  /** Bootstrap confidential client allowed the `admin` scope via client_credentials (automation). */
  ADMIN_CLIENT_ID: z.string().regex(/^[\w.-]{3,128}$/, { message: 'must be 3-128 of letters, digits, _ . -' }).optional(),
  ADMIN_CLIENT_SECRET: z.string().min(32, { message: 'must be at least 32 characters' }).optional(),
  /**
   * The console's second factor (gateway/runtime/second-factor.ts). `required`: an admin or
   * agent signed in without TOTP or a passkey may only enrol one (every other admin API call
   * answers 403 second_factor_required); `optional`: staff who enrolled one are asked for it.
   */
  ADMIN_SECOND_FACTOR: z.enum(['optional', 'required'], { message: 'must be optional or required' }).default('optional'),
  /** Policy, denylist, service/company (client) and customer-deletion changes need a sign-in younger than this many seconds, else the console asks again. */
  ADMIN_REAUTH_MAX_AGE_S: int(1, 86400).default(900),
  /** JSON array of OIDC client metadata seeded as static clients (optionally `service` per client). Unset = one demo portal client. */
  CLIENTS_FILE: z.string().min(1).optional(),

  /** JSON array of resource servers (APIs) access tokens may be for (RFC 8707; JWT access tokens by default). Unset = none. */
  RESOURCE_SERVERS_FILE: z.string().min(1).optional(),
  /** Name of the Keycloak-compatible realm served under /realms/{name}/ beside the root paths. */
  KEYCLOAK_REALM: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, { message: 'must be 1-64 letters, digits, _ or - (starting with a letter or digit)' }).default('gatehouse'),

  /** Signing keys: a JWKS file path, or the JWKS JSON itself. Unset = generated at start (ephemeral; refused in production). */
  JWKS_FILE: z.string().min(1).optional(),
  JWKS: z.string().min(1).optional(),
  /**
   * ID-token signing algorithm for clients that do not choose one (`id_token_signed_response_alg`
   * in CLIENTS_FILE chooses per client). RS256 is what every OIDC client accepts; ES256 and
   * EdDSA are 5-8x cheaper to sign. The JWKS must hold a key for it.
   */
  ID_TOKEN_SIGNING_ALG: z.enum(['RS256', 'PS256', 'ES256', 'EdDSA'], { message: 'must be RS256, PS256, ES256 or EdDSA' }).default('RS256'),
  /** Comma-separated cookie signing keys (newest first, each >= 32 chars). Unset = generated (ephemeral; refused in production). */
  COOKIE_KEYS: z.string().min(1).optional(),

  /** Argon2id cost. Defaults are OWASP's (19 MiB, t=2, p=1); the floor, 7 MiB, is OWASP's smallest setting (with t=5). */
  ARGON2_MEMORY_KIB: int(7168, 4194304).default(19456),
  ARGON2_TIME_COST: int(1, 50).default(2),
  ARGON2_PARALLELISM: int(1, 16).default(1),

  /**
   * Sign-in throttling (OWASP device cookies, gateway/runtime/login-throttle.ts): only
   * FAILED sign-ins count, within RATE_LIMIT_LOGIN_WINDOW_S, then 429 until the window ends.
   * ACCOUNT: per account from browsers without a device cookie for it (the account is
   * locked for those browsers only: its owner's browser still gets in); DEVICE: per device
   * cookie (that cookie is then locked); IP: per client address from browsers without a
   * device cookie, across accounts; SECOND_FACTOR: wrong second-factor codes per account.
   */
  RATE_LIMIT_LOGIN_ACCOUNT: int(1, 100000).default(10),
  RATE_LIMIT_LOGIN_DEVICE: int(1, 100000).default(10),
  RATE_LIMIT_LOGIN_IP: int(1, 1000000).default(100),
  RATE_LIMIT_SECOND_FACTOR: int(1, 100000).default(5),
  RATE_LIMIT_LOGIN_WINDOW_S: int(1, 86400).default(3600),
  /** Sign-ins handed over by another system (Google round trips, AD connector assertions) per client address within RATE_LIMIT_WINDOW_S. */
  RATE_LIMIT_EXTERNAL_IP: int(1, 1000000).default(600),
  /** Window of the sign-up and hand-over limits. */
  RATE_LIMIT_WINDOW_S: int(1, 86400).default(900),
  /** Sign-ups (all paths) per client IP and per address within the window before a 429. */
  RATE_LIMIT_SIGNUP_IP: int(1, 100000).default(30),
  RATE_LIMIT_SIGNUP_ADDRESS: int(1, 100000).default(5),
  /** How long a portal sign-up's verification link is valid; an unverified sign-up holds its address no longer. */
  VERIFY_LINK_TTL_S: int(1, 30 * 86400).default(86400),

  /** Outbound mail (verification, invites). Unset = messages stay queued in the outbox (logged as undeliverable). */
  SMTP_URL: url(['smtp:', 'smtps:']).optional(),
  MAIL_FROM: mailbox.default('Gatehouse <no-reply@gatehouse.invalid>'),
  /** Built-in inbound SMTP intake port. Unset = off. */
  SMTP_INTAKE_PORT: int(0, 65535).optional(),
  /**
   * How the SMTP intake knows a From address is the sender's: `verify` checks SPF, DKIM and
   * DMARC itself (system DNS); `relay` believes the Authentication-Results of the relay in
   * front whose authserv-id is MAIL_INTAKE_AUTHSERV_ID. Either way a message without DMARC
   * pass (or, without a DMARC policy, an aligned SPF/DKIM pass) registers nobody.
   */
  MAIL_INTAKE_AUTH: z.enum(['verify', 'relay'], { message: 'must be verify or relay' }).default('verify'),
  /** authserv-id of the trusted relay. Required with MAIL_INTAKE_AUTH=relay; when set, the HTTP intake API also requires that relay's Authentication-Results. */
  MAIL_INTAKE_AUTHSERV_ID: z.string().regex(/^[\w.-]{1,253}$/, { message: 'must be a host name-like token (letters, digits, . _ -)' }).optional(),
  /** The intake's own addresses (comma-separated), e.g. support@desk.example: never registered, and their domains neither. */
  MAIL_INTAKE_ADDRESSES: z.string().optional(),
  /** SMTP intake: messages and recipients one connection may carry. */
  MAIL_INTAKE_MAX_MESSAGES_PER_CONNECTION: int(1, 10000).default(20),
  MAIL_INTAKE_MAX_RECIPIENTS_PER_CONNECTION: int(1, 10000).default(50),
  /** Inbound mail (both intakes) per sender domain per hour, then deferred (SMTP 451, API 429). */
  MAIL_INTAKE_DOMAIN_LIMIT: int(1, 1000000).default(100),

  /** Sign in with Google (or any OIDC provider standing in for it). All of ID/SECRET set = enabled. */
  GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
  GOOGLE_ISSUER: url(['http:', 'https:']).default('https://accounts.google.com'),
  GOOGLE_AUTHORIZATION_URL: url(['http:', 'https:']).default('https://accounts.google.com/o/oauth2/v2/auth'),
  GOOGLE_TOKEN_URL: url(['http:', 'https:']).default('https://oauth2.googleapis.com/token'),
  GOOGLE_USERINFO_URL: url(['http:', 'https:']).default('https://openidconnect.googleapis.com/v1/userinfo'),
  /** Optional hosted-domain rule, checked server-side on the returned `hd` claim. */
  GOOGLE_HOSTED_DOMAIN: domain.optional(),

  /** Active Directory / LDAP. LDAP_URL set = enabled. */
  LDAP_URL: url(['ldap:', 'ldaps:']).optional(),
  LDAP_BIND_DN: z.string().optional(),
  LDAP_BIND_CREDENTIALS: z.string().optional(),
  LDAP_SEARCH_BASE: z.string().optional(),
  LDAP_SEARCH_FILTER: z.string().default('(|(sAMAccountName={{login}})(userPrincipalName={{login}}))'),
  LDAP_TIMEOUT_MS: int(100, 60000).default(5000),

  /**
   * The sample portal (gateway/dev/): a tiny relying party at ISSUER/sample-portal/, registered as the
   * demo client, to try sign-up and sign-in as a customer. Default on outside production; refused in production.
   */
  SAMPLE_PORTAL: z.enum(['on', 'off'], { message: 'must be on or off' }).optional(),

  /** Comma-separated module paths of policy plugins, run in order after the built-in rules. */
  POLICY_PLUGINS: z.string().optional(),
  POLICY_PLUGIN_TIMEOUT_MS: int(1, 10000).default(200),
});

type Env = z.output<typeof schema>;

export interface Config extends Omit<Env, 'ISSUER' | 'COOKIE_KEYS' | 'JWKS' | 'JWKS_FILE' | 'POLICY_PLUGINS' | 'SAMPLE_PORTAL' | 'MAIL_INTAKE_ADDRESSES'> {
  /** MAIL_INTAKE_ADDRESSES as a list. */
  intakeAddresses: string[];
  ISSUER: string;
  /** SAMPLE_PORTAL resolved: on unless NODE_ENV=production or SAMPLE_PORTAL=off. */
  samplePortal: boolean;
  /** Signing JWKS from JWKS/JWKS_FILE, or null = generate ephemeral. */
  jwks: { keys: Record<string, unknown>[] } | null;
  cookieKeys: string[] | null;
  policyPlugins: string[];
}

/** Thrown with one line per problem, each naming the variable. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const CONFIG_KEYS: readonly string[] = Object.keys(schema.shape);

/** Parse and validate the environment. Empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const input: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = String(issue.path[0] ?? '?');
        const shown = key.includes('SECRET') || key.includes('PASSWORD') || key.includes('CREDENTIALS') || key === 'JWKS' || key === 'COOKIE_KEYS'
          ? ''
          : input[key] !== undefined ? ` (got ${JSON.stringify(input[key])})` : '';
        return `${key} ${issue.message}${shown}`;
      }),
    );
  }
  const e = parsed.data;
  const problems: string[] = [];

  const issuer = (e.ISSUER ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const jwks = readJwks(e, problems);
  if (jwks && !signingAlgsOf(jwks).includes(e.ID_TOKEN_SIGNING_ALG)) {
    problems.push(`ID_TOKEN_SIGNING_ALG is ${e.ID_TOKEN_SIGNING_ALG} but ${e.JWKS_FILE ? 'JWKS_FILE' : 'JWKS'} holds no private signing key for it (${e.ID_TOKEN_SIGNING_ALG === 'ES256' ? 'an EC P-256 key' : e.ID_TOKEN_SIGNING_ALG === 'EdDSA' ? 'an OKP Ed25519 key' : 'an RSA key'})`);
  }
  const cookieKeys = e.COOKIE_KEYS ? e.COOKIE_KEYS.split(',').map((k) => k.trim()).filter(Boolean) : null;
  if (cookieKeys?.some((k) => k.length < 32)) problems.push('COOKIE_KEYS each key must be at least 32 characters');

  if ((e.ADMIN_CLIENT_ID === undefined) !== (e.ADMIN_CLIENT_SECRET === undefined)) {
    problems.push('ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET must be set together');
  }
  if ((e.ADMIN_EMAIL === undefined) !== (e.ADMIN_PASSWORD === undefined)) {
    problems.push('ADMIN_EMAIL and ADMIN_PASSWORD must be set together');
  }
  if ((e.GOOGLE_CLIENT_ID === undefined) !== (e.GOOGLE_CLIENT_SECRET === undefined)) {
    problems.push('GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together');
  }
  if (e.MAIL_INTAKE_AUTH === 'relay' && !e.MAIL_INTAKE_AUTHSERV_ID) problems.push('MAIL_INTAKE_AUTHSERV_ID is required when MAIL_INTAKE_AUTH=relay (the relay whose Authentication-Results are believed)');
  const intakeAddresses = (e.MAIL_INTAKE_ADDRESSES ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  for (const address of intakeAddresses) if (!/^[^@\s]+@[^@\s]+$/.test(address)) problems.push(`MAIL_INTAKE_ADDRESSES has an entry that is not an address: ${JSON.stringify(address)}`);
  const redisTopologies = [e.REDIS_URL && 'REDIS_URL', e.REDIS_SENTINELS && 'REDIS_SENTINELS', e.REDIS_CLUSTER_NODES && 'REDIS_CLUSTER_NODES'].filter(Boolean);
  if (redisTopologies.length > 1) problems.push(`${redisTopologies.join(' and ')} are mutually exclusive: set one (one Redis, a Sentinel set or a Cluster)`);
  if (e.REDIS_URL && (e.REDIS_USERNAME || e.REDIS_PASSWORD || e.REDIS_TLS)) {
    problems.push('REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS apply to REDIS_SENTINELS and REDIS_CLUSTER_NODES; with REDIS_URL put them in the URL (rediss://user:password@host:port)');
  }
  if (e.LDAP_URL && !e.LDAP_SEARCH_BASE) problems.push('LDAP_SEARCH_BASE is required when LDAP_URL is set');
  if (!e.LDAP_SEARCH_FILTER.includes('{{login}}')) problems.push('LDAP_SEARCH_FILTER must contain the {{login}} placeholder');

  // An https issuer means Secure cookies (and SameSite=None for POST at /auth): the gateway
  // must know its requests came over TLS, which behind a TLS-terminating balancer it learns
  // only from X-Forwarded-Proto.
  if (issuer.startsWith('https://') && !e.TRUST_PROXY) {
    problems.push('TRUST_PROXY must be at least 1 (true) when ISSUER is https:// (TLS ends at the balancer; the gateway reads X-Forwarded-Proto to mark its cookies Secure)');
  }

  if (e.NODE_ENV === 'production') {
    if (!jwks) problems.push('JWKS_FILE or JWKS is required when NODE_ENV=production (ephemeral signing keys would log everyone out on restart)');
    if (!cookieKeys) problems.push('COOKIE_KEYS is required when NODE_ENV=production (ephemeral cookie keys would break sessions across processes)');
    if (!issuer.startsWith('https://') && !/^http:\/\/(localhost|127\.0\.0\.1)(:|$)/.test(issuer)) {
      problems.push('ISSUER must be an https:// URL when NODE_ENV=production');
    }
    if (e.SAMPLE_PORTAL === 'on') problems.push('SAMPLE_PORTAL=on is not allowed when NODE_ENV=production (the sample portal is a development aid)');
  }
  if (problems.length) throw new ConfigError(problems);

  const { ISSUER: _i, COOKIE_KEYS: _c, JWKS: _j, JWKS_FILE: _f, POLICY_PLUGINS, SAMPLE_PORTAL, MAIL_INTAKE_ADDRESSES: _m, ...rest } = e;
  return {
    ...rest,
    intakeAddresses,
    ISSUER: issuer,
    samplePortal: e.NODE_ENV !== 'production' && SAMPLE_PORTAL !== 'off',
    jwks,
    cookieKeys,
    policyPlugins: POLICY_PLUGINS ? POLICY_PLUGINS.split(',').map((p) => p.trim()).filter(Boolean) : [],
  };
}

function readJwks(e: Env, problems: string[]): Config['jwks'] {
  if (e.JWKS && e.JWKS_FILE) {
    problems.push('JWKS and JWKS_FILE are mutually exclusive: set one');
    return null;
  }
  let text: string | undefined;
  let source = 'JWKS';
  if (e.JWKS_FILE) {
    source = 'JWKS_FILE';
    try {
      text = readFileSync(e.JWKS_FILE, 'utf8');
    } catch (err) {
      problems.push(`JWKS_FILE cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      return null;
    }
  } else if (e.JWKS) {
    text = e.JWKS;
  }
  if (text === undefined) return null;
  try {
    const value = JSON.parse(text) as unknown;
    const keys = (value as { keys?: unknown }).keys;
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => k && typeof k === 'object' && 'd' in k)) {
      problems.push(`${source} must be a JWKS with at least one private key ({"keys":[...]})`);
      return null;
    }
    return { keys: keys as Record<string, unknown>[] };
  } catch {
    problems.push(`${source} is not valid JSON`);
    return null;
  }
}
