/**
 * The connector's shared secret (GoToAssist's "AD secret token"): read, rotated (shown
 * once) and, for verification, the HMAC keys usable at a given time. Kept in
 * `store.settings` under `activeDirectory.secretTokens`; the admin API rotates it.
 *
 *   const shownOnce = await rotateAdSecret(store, 24 * 3600_000);
 *   const keys = usableAdKeys(await getAdSecrets(store), now);
 *
 * The secret itself is stored (not a hash) because it must stay usable as the HMAC key
 * that verifies assertions: it is a shared secret and must be protected at rest by the
 * database's encryption and access controls.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Store } from '../../../adapters/store.ts';

export const AD_SECRETS_KEY = 'activeDirectory.secretTokens';

export interface AdSecrets {
  current: { value: string; createdAt: Date } | null;
  /** The secret before the last rotation, accepted until `expiresAt` (grace period). */
  previous: { value: string; expiresAt: Date } | null;
}

const storedSecrets = z.object({
  current: z.object({ value: z.string().min(32), createdAt: z.string() }),
  previous: z.object({ value: z.string().min(32), expiresAt: z.string() }).optional(),
});

/** Reads the connector secrets; a missing or unreadable record reads as "none" (the connector then refuses). */
export async function getAdSecrets(store: Pick<Store, 'settings'>): Promise<AdSecrets> {
  const parsed = storedSecrets.safeParse(await store.settings.get(AD_SECRETS_KEY));
  if (!parsed.success) return { current: null, previous: null };
  const { current, previous } = parsed.data;
  return {
    current: { value: current.value, createdAt: new Date(current.createdAt) },
    previous: previous ? { value: previous.value, expiresAt: new Date(previous.expiresAt) } : null,
  };
}

/**
 * Makes a new secret (256 bits, base64url) and returns it: show it once, it is never
 * displayed again. The old one stays valid for `graceMs` after `now` (0 = at once
 * invalid) so the on-prem page can be updated without downtime. Last writer wins on
 * concurrent rotations.
 *
 *   const secret = await rotateAdSecret(store, 3600_000);
 */
export async function rotateAdSecret(store: Pick<Store, 'settings'>, graceMs: number, now: Date = new Date()): Promise<string> {
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError('graceMs must be a non-negative number');
  const { current } = await getAdSecrets(store);
  const value = randomBytes(32).toString('base64url');
  const record: z.input<typeof storedSecrets> = { current: { value, createdAt: now.toISOString() } };
  if (current && graceMs > 0) record.previous = { value: current.value, expiresAt: new Date(now.getTime() + graceMs).toISOString() };
  await store.settings.set(AD_SECRETS_KEY, record);
  return value;
}

/** HMAC keys an assertion may be signed with at `now`: current first, then previous within its grace. */
export function usableAdKeys(secrets: AdSecrets, now: Date): Uint8Array[] {
  const keys: Uint8Array[] = [];
  const encode = (s: string) => new TextEncoder().encode(s);
  if (secrets.current) keys.push(encode(secrets.current.value));
  if (secrets.previous && secrets.previous.expiresAt.getTime() > now.getTime()) keys.push(encode(secrets.previous.value));
  return keys;
}
