/**
 * Signing keys and cookie keys come from config when given: the JWKS endpoint publishes
 * exactly the configured public keys (never a private part), and tokens verify with them.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningJwks } from '../gateway/runtime/keys.ts';
import { startTestGateway } from './helpers/gateway.ts';

test('JWKS from env and from a file are published without private parts', async (t) => {
  const jwks = await generateSigningJwks();
  const file = join(mkdtempSync(join(tmpdir(), 'gh-jwks-')), 'jwks.json');
  writeFileSync(file, JSON.stringify(jwks));
  for (const env of [{ JWKS: JSON.stringify(jwks) }, { JWKS_FILE: file }]) {
    const gw = await startTestGateway({ ...env, COOKIE_KEYS: 'a'.repeat(32) });
    t.teardown(() => gw.close());
    t.deepEqual(gw.context.keys.ephemeral, { jwks: false, cookies: false });
    const published = (await (await fetch(`${gw.issuer}/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
    t.deepEqual(published.keys.map((k) => k.kid).sort(), jwks.keys.map((k) => k.kid).sort());
    for (const key of published.keys) {
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) t.false(secret in key, `no ${secret} in the published ${key.kid}`);
    }
  }
});

test('without configured keys the embedded default generates them and says so', async (t) => {
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  t.deepEqual(gw.context.keys.ephemeral, { jwks: true, cookies: true });
  const published = (await (await fetch(`${gw.issuer}/jwks`)).json()) as { keys: unknown[] };
  // RSA for RS256 (every client's default), EC P-256 for ES256 and Ed25519 for EdDSA.
  t.deepEqual((published.keys as Array<{ kty: string; crv?: string }>).map((k) => `${k.kty}${k.crv ? `/${k.crv}` : ''}`), ['RSA', 'EC/P-256', 'OKP/Ed25519']);
});
