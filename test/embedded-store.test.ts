/**
 * The embedded default with real processes: `node gateway/main.ts` without MONGODB_URI or
 * Redis keeps everything in DATA_DIR/gatehouse.db (SQLite).
 *   - kill -9 in the middle of 200 concurrent sign-ups loses no acknowledged one: a new
 *     process on the same file lists every customer the first one answered 201 for;
 *   - a second process on the same data directory is refused with one clear line, and
 *     after a kill -9 of the owner the next process starts (no stale lock);
 *   - OIDC state survives: a session, a code issued before the restart and a refresh token
 *     all work on the process after it, and disabling the account after a restart still
 *     ends them (the index of an account's sessions and grants is in the file too);
 *   - `npm run backup -- <file>` copies the live database while sign-ups go on, and a
 *     gateway started on the copy has the data.
 * Customers are read through the admin API, the way an operator would.
 */
import test, { type ExecutionContext } from 'ava';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { freePort } from './helpers/ports.ts';
import { TEST_ADMIN, TEST_AUTOMATION, writeClientsFile } from './helpers/gateway.ts';
import { call, clientToken } from './helpers/admin-api.ts';
import { UserAgent } from './helpers/user-agent.ts';
import {
  embeddedEnv,
  productionKeys,
  runGatewayProcess,
  runNode,
  startGatewayProcess,
  type Env,
  type GatewayProcess,
  type ProductionKeys,
} from './helpers/process-gateway.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };

let keys: ProductionKeys | undefined;
let clientsFile = '';
const root = mkdtempSync(join(tmpdir(), 'gh-embedded-'));

test.before(async () => {
  keys = await productionKeys();
  clientsFile = writeClientsFile([PORTAL]);
});

test.after.always(() => rmSync(root, { recursive: true, force: true }));

function freshDataDir(): string {
  return mkdtempSync(join(root, 'data-'));
}

function env(port: number, dataDir: string, extra: Env = {}): Env {
  if (!keys) throw new Error('keys were not generated');
  return embeddedEnv({ keys, port, dataDir, clientsFile, extra });
}

async function gateway(t: ExecutionContext, port: number, dataDir: string, clients?: string): Promise<GatewayProcess> {
  const gw = await startGatewayProcess(clients ? { ...env(port, dataDir), CLIENTS_FILE: clients } : env(port, dataDir));
  t.teardown(() => gw.stop());
  return gw;
}

/** Anyone who writes to support becomes a customer (no invite, so no mail to wait for). */
async function openEmailSignups(gw: GatewayProcess): Promise<void> {
  const admin = await clientToken(gw.url);
  const current = await call(gw.url, admin, 'GET', '/policy');
  const { version, ...policy } = current.body as Record<string, unknown> & { anyone: Record<string, unknown>; version: number };
  const saved = await call(gw.url, admin, 'PUT', '/policy', { ...policy, version, selfRegistration: 'anyone', anyone: { ...policy.anyone, email: true, grantPortalAccess: false } });
  if (saved.status !== 200) throw new Error(`policy PUT answered ${saved.status}: ${JSON.stringify(saved.body)}`);
}

async function intakeToken(url: string): Promise<string> {
  return clientToken(url, 'registrations:email');
}

/** One sign-up through the email intake API; the customer id when acknowledged with 201. */
async function reportSender(url: string, token: string, email: string): Promise<string | null> {
  const res = await fetch(`${url}/api/registrations/email`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email, name: 'Embedded Person' }),
  });
  const body = (await res.json()) as { customerId?: string };
  return res.status === 201 && typeof body.customerId === 'string' ? body.customerId : null;
}

/** Every customer, email -> id, through the admin API's listing (every page). */
async function customersByEmail(url: string): Promise<Map<string, string>> {
  const admin = await clientToken(url);
  const found = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const page = await call(url, admin, 'GET', `/customers?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (page.status !== 200) throw new Error(`customer listing answered ${page.status}`);
    for (const c of page.body.items as Array<{ id: string; email: string }>) found.set(c.email, c.id);
    cursor = page.body.next as string | null;
  } while (cursor);
  return found;
}

test.serial('kill -9 in the middle of 200 concurrent sign-ups loses no acknowledged one', async (t) => {
  const dataDir = freshDataDir();
  const port = await freePort();
  const first = await gateway(t, port, dataDir);
  await openEmailSignups(first);
  const token = await intakeToken(first.url);

  const acknowledged = new Map<string, string>();
  let killed: Promise<unknown> | null = null;
  const emails = Array.from({ length: 200 }, (_, i) => `burst${i}@kill9.example`);
  const settled = await Promise.allSettled(
    emails.map(async (email) => {
      const id = await reportSender(first.url, token, email);
      if (id) acknowledged.set(email, id);
      if (acknowledged.size >= 100) killed ??= first.kill();
    }),
  );
  const status = (await killed) as { signal: string } | null;
  t.is(status?.signal, 'SIGKILL');
  const failed = settled.filter((s) => s.status === 'rejected').length;
  t.true(acknowledged.size >= 100 && acknowledged.size < 200, `the kill landed mid-burst (${acknowledged.size} acknowledged)`);
  t.true(failed > 0, 'requests in flight died with the process');

  // The next process on the same file: no stale lock, and every acknowledged sign-up is there.
  const second = await gateway(t, port, dataDir);
  const stored = await customersByEmail(second.url);
  const missing = [...acknowledged].filter(([email, id]) => stored.get(email) !== id);
  t.deepEqual(missing, [], 'every acknowledged customer exists after the restart, with the id it was given');
  const committedUnacknowledged = emails.filter((e) => stored.has(e) && !acknowledged.has(e)).length;
  t.log(`kill -9 after ${acknowledged.size}/200 acknowledged sign-ups (${failed} requests died in flight): all ${acknowledged.size} present after restart, plus ${committedUnacknowledged} committed but never acknowledged`);
});

test.serial('a second process on the same data directory is refused with one clear line; after kill -9 of the owner the next one starts', async (t) => {
  const dataDir = freshDataDir();
  const owner = await gateway(t, await freePort(), dataDir);
  const refused = await runGatewayProcess(env(await freePort(), dataDir));
  t.is(refused.code, 78, refused.stderr);
  const lines = refused.stderr.trim().split('\n');
  t.is(lines.length, 1, refused.stderr);
  t.regex(lines[0]!, new RegExp(`^gatehouse: configuration error: DATA_DIR ${dataDir} is in use by another Gatehouse process \\(pid ${owner.pid}\\)`));
  t.regex(lines[0]!, /MONGODB_URI and REDIS_URL/, 'it says how to run several processes');
  t.true(owner.alive(), 'the owner is untouched');
  t.is((await fetch(`${owner.url}/readyz`)).status, 200);

  await owner.kill();
  const next = await gateway(t, await freePort(), dataDir);
  t.deepEqual(((await (await fetch(`${next.url}/readyz`)).json()) as { checks: unknown }).checks, { sqlite: 'up' });
});

/** A browser signed in as the test admin through the portal client on `gw`, with its tokens. */
async function signedIn(gw: GatewayProcess) {
  const config = await oidc.discovery(new URL(gw.url), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const browser = new UserAgent();
  const authorize = async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return { verifier, page: await browser.follow(url.toString(), (u) => u.startsWith(REDIRECT)) };
  };
  const signIn = await authorize();
  const form = browser.form(signIn.page.hop.body, '/login');
  const done = await browser.follow(await browser.post(new URL(form.action, gw.url).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password }), (u) => u.startsWith(REDIRECT));
  if (!done.stoppedAt) throw new Error('the sign-in did not reach the redirect URI');
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.stoppedAt), { pkceCodeVerifier: signIn.verifier });
  return { config, authorize, tokens };
}

test.serial('OIDC state survives a restart: the session, a code issued before it and a refresh token work after it', async (t) => {
  const dataDir = freshDataDir();
  const port = await freePort();
  const first = await gateway(t, port, dataDir);
  const { config, authorize, tokens } = await signedIn(first);
  t.truthy(tokens.refresh_token);
  const pending = await authorize();
  t.truthy(pending.page.stoppedAt, 'the session signs in again without a form');

  t.is((await first.kill()).signal, 'SIGKILL');
  const second = await gateway(t, port, dataDir);

  const redeemed = await oidc.authorizationCodeGrant(config, new URL(pending.page.stoppedAt!), { pkceCodeVerifier: pending.verifier });
  t.is((await oidc.fetchUserInfo(config, redeemed.access_token, redeemed.claims()!.sub)).email, TEST_ADMIN.email, 'a code issued before the restart is redeemed after it');
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  t.truthy(refreshed.access_token, 'a refresh token issued before the restart works after it');
  const again = await authorize();
  t.truthy(again.page.stoppedAt, 'the browser session survived: no login form');
  t.true(second.alive());
});

test.serial('after a restart, disabling an account still reaches the sessions and grants issued before it (the account index is in the file too)', async (t) => {
  // The portal hears of it by Back-Channel Logout; an index kept in memory would be empty after the restart.
  const heard: Array<{ sub?: string; sid?: string }> = [];
  const receiver = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const token = new URLSearchParams(body).get('logout_token') ?? '';
    heard.push(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString() || '{}') as { sub?: string; sid?: string });
    res.writeHead(200).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => receiver.close());
  const withLogout = writeClientsFile([{ ...PORTAL, backchannel_logout_uri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/portal` }]);

  const dataDir = freshDataDir();
  const port = await freePort();
  const first = await gateway(t, port, dataDir, withLogout);
  const { config, tokens } = await signedIn(first);
  t.is((await first.kill()).signal, 'SIGKILL');
  const second = await gateway(t, port, dataDir, withLogout);

  // Nothing touches the session or the grant after the restart before the account is disabled.
  const admin = await clientToken(second.url);
  const sub = tokens.claims()!.sub;
  const disabled = await call(second.url, admin, 'PATCH', `/customers/${encodeURIComponent(sub)}`, { status: 'disabled' });
  t.is(disabled.status, 200, JSON.stringify(disabled.body));
  const audit = await call(second.url, admin, 'GET', `/audit?action=customer.update&target=${encodeURIComponent(sub)}`);
  const revoked = (audit.body.items as Array<{ data?: { revoked?: { grants: number; sessions: number } } }>)[0]?.data?.revoked;
  t.true((revoked?.grants ?? 0) >= 1 && (revoked?.sessions ?? 0) >= 1, `the grant and the session from before the restart were found and revoked: ${JSON.stringify(revoked)}`);
  const deadline = Date.now() + 30_000;
  while (!heard.some((h) => h.sub === sub && typeof h.sid === 'string') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  t.true(heard.some((h) => h.sub === sub && typeof h.sid === 'string'), `the portal got a logout token for the session from before the restart: ${JSON.stringify(heard)}`);
  const refused = await t.throwsAsync(oidc.refreshTokenGrant(config, tokens.refresh_token!));
  t.is((refused as { error?: string } | undefined)?.error, 'invalid_grant', 'the refresh token issued before the restart no longer works');
});

test.serial('npm run backup copies the live database while sign-ups go on; a gateway on the copy has the data', async (t) => {
  const dataDir = freshDataDir();
  const live = await gateway(t, await freePort(), dataDir);
  await openEmailSignups(live);
  const token = await intakeToken(live.url);
  const before = await Promise.all(Array.from({ length: 30 }, (_, i) => reportSender(live.url, token, `before${i}@backup.example`)));
  t.true(before.every((id) => id !== null));

  const target = join(root, `backup-${Date.now()}.db`);
  const during = Promise.all(Array.from({ length: 30 }, (_, i) => reportSender(live.url, token, `during${i}@backup.example`)));
  const backup = await runNode('gateway/backup.ts', env(0, dataDir), 60_000, [target]);
  t.is(backup.code, 0, backup.stderr);
  t.regex(backup.stdout, /^gatehouse backup: .*gatehouse\.db -> .*: \d+ KiB, \d+ customers, integrity ok/);
  t.true((await during).every((id) => id !== null), 'sign-ups went on during the backup');
  t.is(statSync(target).mode & 0o777, 0o600, 'the copy is private');

  const again = await runNode('gateway/backup.ts', env(0, dataDir), 60_000, [target]);
  t.is(again.code, 1);
  t.regex(again.stderr, /exists: choose a new file/);

  const restored = join(freshDataDir(), 'restored');
  mkdirSync(restored);
  copyFileSync(target, join(restored, 'gatehouse.db'));
  const fromCopy = await gateway(t, await freePort(), restored);
  const stored = await customersByEmail(fromCopy.url);
  const missing = Array.from({ length: 30 }, (_, i) => `before${i}@backup.example`).filter((e) => !stored.has(e));
  t.deepEqual(missing, [], 'every sign-up acknowledged before the backup is in the copy');
  t.true(stored.has(TEST_ADMIN.email));
  t.false(existsSync(`${target}.partial-${process.pid}`));
});
