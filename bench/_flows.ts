/**
 * The flows the benchmarks drive over real HTTP: a complete password login
 * (authorization request with PKCE -> login form -> credentials -> code -> token
 * exchange), and the login load generator run as its own process pinned to the load
 * core (`node bench/_flows.ts <url> <seconds> <concurrency>`), which prints one JSON line
 * with the logins completed and its own CPU seconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { basic, BENCH_ADMIN, BENCH_CLIENT } from './_lib.ts';

const REDIRECT = BENCH_CLIENT.redirect_uris[0]!;

async function follow(ua: UserAgent, url: string) {
  let hop = await ua.get(url);
  for (let i = 0; i < 10 && hop.location && !hop.location.startsWith(REDIRECT); i++) hop = await ua.get(new URL(hop.location, url).toString());
  return hop;
}

/** One complete login; resolves with the token response (access, refresh and ID token). */
export async function oneLogin(base: string): Promise<{ access_token: string; refresh_token?: string; id_token?: string }> {
  const ua = new UserAgent();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const page = await follow(ua, `${base}/auth?client_id=${BENCH_CLIENT.client_id}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${challenge}&code_challenge_method=S256&state=s`);
  const form = ua.form(page.body, '/login');
  const posted = await ua.request(new URL(form.action, base).toString(), { form: { ...form.fields, email: BENCH_ADMIN.email, password: BENCH_ADMIN.password }, headers: { origin: base } });
  const back = posted.location?.startsWith(REDIRECT) ? posted : await follow(ua, new URL(posted.location ?? '', base).toString());
  const code = back.location ? new URL(back.location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code (status ${back.status})`);
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
  });
  if (res.status !== 200) throw new Error(`token ${res.status}`);
  return (await res.json()) as { access_token: string; refresh_token?: string };
}

/** Runs `concurrency` login loops against `base` for `seconds`. */
export async function loginLoad(base: string, seconds: number, concurrency: number): Promise<{ logins: number; errors: number; seconds: number }> {
  const until = Date.now() + seconds * 1000;
  const started = performance.now();
  let logins = 0;
  let errors = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < until) {
      try {
        await oneLogin(base);
        logins++;
      } catch {
        errors++;
      }
    }
  }));
  return { logins, errors, seconds: (performance.now() - started) / 1000 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [base, seconds, concurrency] = process.argv.slice(2);
  const cpu0 = process.cpuUsage();
  const result = await loginLoad(base!, Number(seconds), Number(concurrency));
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ ...result, generatorCpuSeconds: (cpu.user + cpu.system) / 1e6 }));
}
