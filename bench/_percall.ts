/**
 * Server CPU per request for single requests under autocannon (the gateway pinned to
 * one core, autocannon to the other): the floor of the HTTP stack (/healthz), and the
 * two grants. `node bench/_percall.ts [seconds] [cases, comma-separated: healthz,jwks,cc,ccjwt,refresh]`
 */
import { basic, BENCH_API, BENCH_AUTOMATION, BENCH_CLIENT, BENCH_MACHINE, cannon, startServer } from './_lib.ts';
import { oneLogin } from './_flows.ts';

const seconds = Number(process.argv[2] ?? 5);
const wanted = (process.argv[3] ?? 'healthz,jwks,cc,refresh').split(',');
const server = await startServer({ clientAlg: process.env.BENCH_ID_TOKEN_ALG ?? 'EdDSA' });
try {
  type Req = { method: string; path: string; headers: Record<string, string>; body?: string };
  const form = (auth: string, body: string): Req => ({ method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth }, body });
  const cases: Record<string, () => Promise<Req[]>> = {
    healthz: async () => [{ method: 'GET', path: '/healthz', headers: {} }],
    jwks: async () => [{ method: 'GET', path: '/jwks', headers: {} }],
    cc: async () => [form(basic(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret), 'grant_type=client_credentials&scope=admin')],
    ccjwt: async () => [form(basic(BENCH_MACHINE.client_id, BENCH_MACHINE.client_secret), `grant_type=client_credentials&scope=${BENCH_API.scope}&resource=${encodeURIComponent(BENCH_API.identifier)}`)],
    refresh: async () => {
      const out: Req[] = [];
      for (let i = 0; i < 8; i++) out.push(form(basic(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret), `grant_type=refresh_token&refresh_token=${(await oneLogin(server.url)).refresh_token}`));
      return out;
    },
  };
  for (const name of wanted) {
    const requests = await cases[name]!();
    await cannon({ url: server.url, seconds: 2, connections: 32, requests });
    const cpu0 = server.cpuSeconds();
    const r = await cannon({ url: server.url, seconds, connections: 32, requests });
    const cpu = server.cpuSeconds() - cpu0;
    console.log(`${name.padEnd(8)} ${((1000 * cpu) / r.requests).toFixed(3)} ms CPU/request  ${(r.requests / cpu).toFixed(0)}/core-s  non2xx ${r.non2xx}  rss ${server.rssMiB()} MiB`);
  }
} finally {
  await server.stop();
}
