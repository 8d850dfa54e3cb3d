/**
 * Server CPU per request for the repeatable hops of a login under autocannon (the
 * gateway pinned to one core, autocannon to the other), with an optional CPU profile:
 *   node bench/_hops.ts [seconds] [healthz,auth,page,login] [--prof]
 * `auth` is GET /auth (each request starts a new interaction); `page` re-renders one
 * interaction's login page with its cookie.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { BENCH_ADMIN, BENCH_CLIENT, cannon, startServer } from './_lib.ts';
import { summarizeProfile } from './_profile.ts';

const seconds = Number(process.argv[2] ?? 5);
const wanted = (process.argv[3] ?? 'auth,page').split(',');
const prof = process.argv.includes('--prof') ? mkdtempSync(join(tmpdir(), 'gh-prof-')) : null;
const server = await startServer({ clientAlg: 'EdDSA', nodeArgs: prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [] });
let skipMs = 0;
try {
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  const authPath = `/auth?client_id=${BENCH_CLIENT.client_id}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(BENCH_CLIENT.redirect_uris[0]!)}&code_challenge=${challenge}&code_challenge_method=S256&state=s`;
  const cases: Record<string, () => Promise<Array<{ method: string; path: string; headers: Record<string, string>; body?: string }>>> = {
    healthz: async () => [{ method: 'GET', path: '/healthz', headers: {} }],
    auth: async () => [{ method: 'GET', path: authPath, headers: {} }],
    page: async () => {
      const ua = new UserAgent();
      const hop = await ua.get(server.url + authPath);
      const cookie = [...ua.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      return [{ method: 'GET', path: new URL(hop.location!).pathname, headers: { cookie } }];
    },
    login: async () => {
      const ua = new UserAgent();
      const hop = await ua.get(await ua.get(server.url + authPath).then((h) => h.location!));
      const form = ua.form(hop.body, '/login');
      const body = new URLSearchParams({ ...form.fields, email: BENCH_ADMIN.email, password: BENCH_ADMIN.password }).toString();
      const cookie = [...ua.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      return [{ method: 'POST', path: new URL(form.action, server.url).pathname, headers: { cookie, origin: server.url, 'content-type': 'application/x-www-form-urlencoded' }, body }];
    },
  };
  for (const name of wanted) {
    const requests = await cases[name]!();
    await cannon({ url: server.url, seconds: 2, connections: 8, requests });
    skipMs = performance.now() - server.spawnedAt;
    const cpu0 = server.cpuSeconds();
    const r = await cannon({ url: server.url, seconds, connections: 8, requests });
    const cpu = server.cpuSeconds() - cpu0;
    console.log(`${name.padEnd(8)} ${((1000 * cpu) / r.requests).toFixed(3)} ms CPU/request  ${(r.requests / cpu).toFixed(0)}/core-s  non2xx ${r.non2xx}  errors ${r.errors}`);
  }
} finally {
  await server.stop();
}
if (prof) {
  const file = readdirSync(prof).find((f) => f.endsWith('.cpuprofile'))!;
  console.log(join(prof, file));
  console.log(summarizeProfile(join(prof, file), 30, skipMs).text);
}
