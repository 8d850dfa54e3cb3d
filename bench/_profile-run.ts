/**
 * Profiles one server process under one load and prints where its main thread's time
 * goes (bench/_profile.ts): `node bench/_profile-run.ts <cc|refresh|login> [seconds]`.
 * The server runs pinned with --cpu-prof; start-up and warm-up are left out.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic, BENCH_AUTOMATION, BENCH_CLIENT, cannon, startServer } from './_lib.ts';
import { loginLoad, oneLogin } from './_flows.ts';
import { summarizeProfile } from './_profile.ts';

const what = process.argv[2] ?? 'cc';
const seconds = Number(process.argv[3] ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'gh-prof-'));
const server = await startServer({ clientAlg: process.env.BENCH_ID_TOKEN_ALG ?? 'EdDSA', nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
let skipMs = 0;
let count = 0;
let cpu = 0;
try {
  const cc = { method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret) }, body: 'grant_type=client_credentials&scope=admin' };
  const refreshTokens: string[] = [];
  for (let i = 0; i < 8; i++) refreshTokens.push((await oneLogin(server.url)).refresh_token!);
  const rf = refreshTokens.map((rt) => ({ method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret) }, body: `grant_type=refresh_token&refresh_token=${rt}` }));
  const requests = what === 'refresh' ? rf : [cc];
  if (what !== 'login') await cannon({ url: server.url, seconds: 2, connections: 32, requests });
  skipMs = performance.now() - server.spawnedAt;
  const cpu0 = server.cpuSeconds();
  if (what === 'login') count = (await loginLoad(server.url, seconds, 6)).logins;
  else count = (await cannon({ url: server.url, seconds, connections: 32, requests })).requests;
  cpu = server.cpuSeconds() - cpu0;
} finally {
  await server.stop();
}
console.log(`${what}: ${count} requests, ${(1000 * cpu / count).toFixed(3)} ms server CPU each (${(count / cpu).toFixed(0)} per core-second)`);
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
console.log(join(dir, file));
console.log(summarizeProfile(join(dir, file), Number(process.env.TOP ?? 30), skipMs).text);
