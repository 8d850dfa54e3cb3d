/**
 * The gateway as a newcomer starts it: `node gateway/main.ts` prints the issuer, the
 * demo client and the bootstrap admin, warns that the embedded store is not durable,
 * stops cleanly on SIGTERM, and refuses a bad configuration with a clear line.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './helpers/ports.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const node = `${root}node_modules/.bin/node`;

function run(env: Record<string, string>) {
  const child = spawn(node, ['gateway/main.ts'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => out, err: () => err };
}

test('npm start on the embedded default prints what a newcomer needs and stops on SIGTERM', async (t) => {
  const port = await freePort();
  const p = run({ PORT: String(port), ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' });
  t.teardown(() => p.child.kill('SIGKILL'));
  const deadline = Date.now() + 30000;
  while (!p.out().includes('bootstrap admin') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const out = p.out();
  t.regex(out, new RegExp(`issuer:\\s+http://localhost:${port}`));
  t.regex(out, /client_id:\s+demo-portal/);
  t.regex(out, /client_secret:\s+\S{20,}/);
  t.regex(out, /redirect_uri:\s+http:\/\/localhost:8080\/callback/);
  t.regex(out, /password \(generated, shown once\): \S{12,}/);
  t.regex(out, /NOT durable/);
  t.regex(p.err() + out, /ephemeral signing keys/);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.is(health.status, 200);
  const ready = await (await fetch(`http://127.0.0.1:${port}/readyz`)).json();
  t.deepEqual(ready, { status: 'ready', checks: { memory: 'up' } });
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
});

test('a bad value stops the start with one line naming the variable', async (t) => {
  const p = run({ PORT: 'eighty' });
  t.is(await p.exited, 78);
  t.regex(p.err(), /^gatehouse: configuration error: PORT must be a whole number between 0 and 65535 \(got "eighty"\)$/m);
  t.false(p.err().includes('    at '), 'no stack trace');
});

test('a production start refuses ephemeral keys', async (t) => {
  const p = run({ NODE_ENV: 'production', ISSUER: 'https://login.example.com', MONGODB_URI: 'mongodb://127.0.0.1:1/' });
  t.is(await p.exited, 78);
  t.regex(p.err(), /JWKS_FILE or JWKS is required when NODE_ENV=production/);
  t.regex(p.err(), /COOKIE_KEYS is required when NODE_ENV=production/);
});
