/**
 * Sign-in throttling (issue 12, OWASP device cookies), measured against a real gateway
 * (in-process, its limits in a real Redis, TRUST_PROXY=1 so each request names its client
 * address in X-Forwarded-For) with the DEFAULT limits (.env.example):
 *
 *   office     300 distinct customers sign in successfully from ONE address, each from a
 *              browser new to them, one in ten after a typo. Target: all 300 get in, well
 *              within 15 minutes.
 *   spread     password guessing at one account from 100 addresses (5 guesses each), while
 *              its owner signs in from the browser they used before. Target: at most
 *              RATE_LIMIT_LOGIN_ACCOUNT password checks in the window (an hour); the owner
 *              gets in.
 *   sweep      one address guessing one password at each of 1,000 accounts. Target: at most
 *              RATE_LIMIT_LOGIN_IP password checks per window; the rest refused (429).
 *
 * Run: npm run bench -- login-throttle      Figures are reported, never asserted.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../gateway/runtime/config.ts';
import { startTestGateway, writeClientsFile } from '../test/helpers/gateway.ts';
import { startRedisServer } from '../test/helpers/redis-server.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { report } from './_lib.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const CLIENT = { client_id: 'bench-throttle', client_secret: 'bench-throttle-secret-0123456789abcdef', redirect_uris: [REDIRECT], first_party: true };
const defaults = loadConfig({});
const OFFICE = Number(process.env.BENCH_THROTTLE_OFFICE ?? 300);

const redis = await startRedisServer();
const gw = await startTestGateway({ REDIS_URL: redis.url, TRUST_PROXY: '1', CLIENTS_FILE: writeClientsFile([CLIENT]), LOG_LEVEL: 'silent' });

/** One browser's attempt from `ip`: authorization request, login page, credentials; the answer's status. */
async function attempt(ua: UserAgent, ip: string, email: string, password: string): Promise<number> {
  const xff = { 'x-forwarded-for': ip };
  let hop = await ua.request(`${gw.issuer}/auth?client_id=${CLIENT.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256`, { headers: xff });
  for (let i = 0; i < 5 && hop.location && !hop.location.startsWith(REDIRECT); i++) hop = await ua.request(hop.location, { headers: xff });
  const form = ua.form(hop.body, '/login');
  const res = await ua.request(new URL(form.action, gw.issuer).toString(), { form: { ...form.fields, email, password }, headers: xff });
  return res.status;
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

async function customer(email: string, password: string): Promise<void> {
  await gw.context.store.customers.create({
    id: randomUUID(), email, emailVerified: true, name: 'Bench Person', passwordHash: await gw.context.hasher.hash(password),
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
}

try {
  const limits = { account: defaults.RATE_LIMIT_LOGIN_ACCOUNT, ip: defaults.RATE_LIMIT_LOGIN_IP, windowS: defaults.RATE_LIMIT_LOGIN_WINDOW_S };
  console.log(`default limits: ${limits.account} failures per account (untrusted browsers), ${limits.ip} per address, per ${limits.windowS} s`);

  // office: 300 successes (and ~30 typos) from one address.
  const staff = Array.from({ length: OFFICE }, (_, i) => ({ email: `staff-${i}@office.example`, password: `office-password-${i}-${randomUUID().slice(0, 6)}`, typo: i % 10 === 3 }));
  for (const s of staff) await customer(s.email, s.password);
  const officeStatuses: number[] = [];
  let typos = 0;
  const officeStart = performance.now();
  await pool(staff, 8, async (s) => {
    const ua = new UserAgent();
    if (s.typo) {
      typos++;
      officeStatuses.push(await attempt(ua, '203.0.113.10', s.email, `${s.password}-typo`));
    }
    officeStatuses.push(await attempt(ua, '203.0.113.10', s.email, s.password));
  });
  const officeSeconds = (performance.now() - officeStart) / 1000;
  const signedIn = officeStatuses.filter((s) => s === 303).length;
  report({ bench: 'throttle', metric: `office: of ${OFFICE} customers from one address, signed in`, value: signedIn, unit: 'customers',
    detail: { typos, refused429: officeStatuses.filter((s) => s === 429).length, seconds: Number(officeSeconds.toFixed(1)), target: `${OFFICE} within 900 s` } });

  // spread: 100 addresses x 5 guesses at one account; the owner's browser signs in meanwhile.
  await customer('victim@target.example', 'the-victims-real-password');
  const owner = new UserAgent();
  const ownerBefore = await attempt(owner, '192.0.2.50', 'victim@target.example', 'the-victims-real-password');
  const guesses = Array.from({ length: 100 }, (_, a) => Array.from({ length: 5 }, (_, g) => ({ ip: `198.51.100.${a + 1}`, password: `guess-${a}-${g}-xxxx` }))).flat();
  const spread: number[] = [];
  let ownerDuring = 0;
  const spreadStart = performance.now();
  await pool(guesses, 8, async (g) => {
    spread.push(await attempt(new UserAgent(), g.ip, 'victim@target.example', g.password));
    if (spread.length === 250) ownerDuring = await attempt(owner, '192.0.2.50', 'victim@target.example', 'the-victims-real-password');
  });
  report({ bench: 'throttle', metric: 'spread: password checks against one account from 100 addresses', value: spread.filter((s) => s === 401).length, unit: 'checks',
    detail: { attempts: spread.length, refused429: spread.filter((s) => s === 429).length, target: `<= ${limits.account} per ${limits.windowS} s`, seconds: Number(((performance.now() - spreadStart) / 1000).toFixed(1)) } });
  report({ bench: 'throttle', metric: "spread: the owner's own browser signs in during the attack", value: ownerBefore === 303 && ownerDuring === 303 ? 1 : 0, unit: 'yes=1',
    detail: { before: ownerBefore, during: ownerDuring } });

  // sweep: one address, one guess at each of 1,000 accounts (a tenth of them exist).
  for (let i = 0; i < 100; i++) await customer(`member-${i * 10}@sweep.example`, `member-password-${i}-${randomUUID()}`);
  const sweep: number[] = [];
  const sweepStart = performance.now();
  await pool(Array.from({ length: 1000 }, (_, i) => i), 8, async (i) => {
    sweep.push(await attempt(new UserAgent(), '192.0.2.99', `member-${i}@sweep.example`, 'Summer2026!'));
  });
  const sweepSeconds = (performance.now() - sweepStart) / 1000;
  const checks = sweep.filter((s) => s === 401).length;
  report({ bench: 'throttle', metric: 'sweep: password checks from one address over 1,000 accounts', value: checks, unit: 'checks',
    detail: { attempts: sweep.length, refused429: sweep.filter((s) => s === 429).length, seconds: Number(sweepSeconds.toFixed(1)), target: `<= ${limits.ip} per ${limits.windowS} s`,
      attemptsAnsweredPerHour: Math.round((sweep.length / sweepSeconds) * 3600), throttledRatePerHour: Math.round((checks / limits.windowS) * 3600) } });
} finally {
  await gw.close();
  await redis.stop();
}
