/**
 * Configuration: every variable is validated at start, a bad value is named in one
 * line, production refuses ephemeral keys, and .env.example documents every key.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { CONFIG_KEYS, ConfigError, loadConfig } from '../gateway/runtime/config.ts';

test('defaults give a runnable embedded configuration', (t) => {
  const c = loadConfig({});
  t.is(c.PORT, 3000);
  t.is(c.ISSUER, 'http://localhost:3000');
  t.is(c.jwks, null);
  t.is(c.cookieKeys, null);
  t.is(c.ARGON2_MEMORY_KIB, 19456);
  t.deepEqual(c.policyPlugins, []);
});

const bad: Array<[Record<string, string>, RegExp]> = [
  [{ PORT: 'abc' }, /^PORT must be a whole number/],
  [{ PORT: '70000' }, /^PORT must be at most 65535/],
  [{ ISSUER: 'ftp://x' }, /^ISSUER must be a URL/],
  [{ REDIS_URL: 'http://x' }, /^REDIS_URL must be a URL starting with redis:/],
  [{ MONGODB_URI: 'localhost' }, /^MONGODB_URI must be a URL/],
  [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL /],
  [{ ADMIN_PASSWORD: 'short', ADMIN_EMAIL: 'a@b.test' }, /^ADMIN_PASSWORD must be at least 12 characters$/],
  [{ ADMIN_CLIENT_ID: 'automation' }, /^ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET must be set together/],
  [{ COOKIE_KEYS: 'short' }, /^COOKIE_KEYS each key must be at least 32 characters/],
  [{ JWKS: '{nope' }, /^JWKS is not valid JSON/],
  [{ JWKS: '{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}' }, /^JWKS must be a JWKS with at least one private key/],
  [{ JWKS_FILE: '/nonexistent/jwks.json' }, /^JWKS_FILE cannot be read/],
  [{ LDAP_URL: 'ldap://127.0.0.1:1389' }, /^LDAP_SEARCH_BASE is required/],
  [{ NODE_ENV: 'staging' }, /^NODE_ENV /],
  [{ GOOGLE_HOSTED_DOMAIN: 'not a domain' }, /^GOOGLE_HOSTED_DOMAIN must be a domain name/],
  [{ GOOGLE_HOSTED_DOMAIN: 'https://corp.example' }, /^GOOGLE_HOSTED_DOMAIN must be a domain name/],
  [{ MAIL_FROM: 'Gatehouse' }, /^MAIL_FROM must be an address/],
  [{ MAIL_FROM: 'Gatehouse <no-reply@>' }, /^MAIL_FROM must be an address/],
  [{ MAIL_FROM: 'a@example.com, b@example.com' }, /^MAIL_FROM must be an address/],
  [{ MAIL_FROM: 'Gatehouse <x@example.com>\r\nBcc: y@example.com' }, /^MAIL_FROM must be an address/],
  [{ REDIS_SENTINELS: 'sentinel-without-port' }, /^REDIS_SENTINELS must be a comma-separated list of host:port \(bad entry "sentinel-without-port"\)/],
  [{ REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2:99999' }, /^REDIS_CLUSTER_NODES must be a comma-separated list of host:port/],
  [{ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, /^REDIS_URL and REDIS_CLUSTER_NODES are mutually exclusive/],
  [{ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PASSWORD: 'x' }, /^REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS apply to REDIS_SENTINELS/],
];

test('a hosted domain is kept canonical; a sender may carry a display name', (t) => {
  const c = loadConfig({ GOOGLE_HOSTED_DOMAIN: 'Corp.Example.', MAIL_FROM: 'Support Desk <help@corp.example>' });
  t.is(c.GOOGLE_HOSTED_DOMAIN, 'corp.example');
  t.is(c.MAIL_FROM, 'Support Desk <help@corp.example>');
  t.is(loadConfig({ MAIL_FROM: 'help@corp.example' }).MAIL_FROM, 'help@corp.example');
});

test('Redis Sentinel and Cluster node lists are parsed, IPv6 included', (t) => {
  const sentinel = loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379, sentinel-2.internal:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'gh-master' });
  t.deepEqual(sentinel.REDIS_SENTINELS, [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-2.internal', port: 26380 }, { host: '::1', port: 26381 }]);
  t.is(sentinel.REDIS_SENTINEL_NAME, 'gh-master');
  t.is(loadConfig({ REDIS_SENTINELS: 'a:1' }).REDIS_SENTINEL_NAME, 'mymaster', 'the conventional default name');
  t.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).REDIS_CLUSTER_NODES, [{ host: '127.0.0.1', port: 7000 }]);
});

for (const [env, expected] of bad) {
  test(`rejects ${JSON.stringify(env)} with one line naming the variable`, (t) => {
    const err = t.throws(() => loadConfig(env), { instanceOf: ConfigError }) as ConfigError;
    t.true(err.problems.some((p) => expected.test(p)), err.problems.join(' | '));
  });
}

test('secrets are never echoed in configuration errors', (t) => {
  const err = t.throws(() => loadConfig({ ADMIN_EMAIL: 'a@b.test', ADMIN_PASSWORD: 'hunter2' }), { instanceOf: ConfigError }) as ConfigError;
  t.false(err.message.includes('hunter2'));
});

test('production refuses ephemeral keys and a plain-http issuer, and runs on the embedded store (one process)', (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production', ISSUER: 'http://login.example.com' }), { instanceOf: ConfigError }) as ConfigError;
  const text = err.problems.join('\n');
  t.regex(text, /JWKS_FILE or JWKS is required when NODE_ENV=production/);
  t.regex(text, /COOKIE_KEYS is required when NODE_ENV=production/);
  t.notRegex(text, /MONGODB_URI/);
  t.regex(text, /ISSUER must be an https:\/\/ URL/);
});

test('an https issuer needs TRUST_PROXY (the gateway learns about TLS from the balancer); the realm name is checked', (t) => {
  const err = t.throws(() => loadConfig({ ISSUER: 'https://login.example.com' }), { instanceOf: ConfigError }) as ConfigError;
  t.regex(err.problems.join('\n'), /TRUST_PROXY must be at least 1 \(true\) when ISSUER is https:\/\//);
  t.is(loadConfig({ ISSUER: 'https://login.example.com', TRUST_PROXY: 'true' }).ISSUER, 'https://login.example.com');
  t.is(loadConfig({}).KEYCLOAK_REALM, 'gatehouse');
  const realm = t.throws(() => loadConfig({ KEYCLOAK_REALM: 'no/slash' }), { instanceOf: ConfigError }) as ConfigError;
  t.regex(realm.problems.join('\n'), /^KEYCLOAK_REALM must be/m);
});

test('.env.example documents every variable the gateway reads', (t) => {
  const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  const missing = CONFIG_KEYS.filter((key) => !new RegExp(`^#? ?${key}=`, 'm').test(example));
  t.deepEqual(missing, []);
});
