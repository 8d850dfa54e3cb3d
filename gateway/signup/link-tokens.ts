/**
 * The single-use, expiring secrets behind emailed links (verify, invite, reset): 256
 * random bits for the link, only their SHA-256 in the store.
 *
 *   const { secret, expiresAt } = await issueLinkToken(store, 'invite', customer.id, INVITE_TTL_MS);
 *   const token = await redeemLinkToken(store, 'invite', secretFromUrl);   // null when used, expired or unknown
 *
 * A link remembers the portal and language of the request that made it (the page
 * context, gateway/http/page-context.ts), and the page it opens shows them again: the
 * verify, invite and reset pages are the portal's, in the customer's language.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { OneTimeTokenKind, Store } from '../../adapters/store.ts';
import { hashSecret } from '../runtime/secrets.ts';
import { currentPresentation, presentAs } from '../http/page-context.ts';

/** Where a link token keeps the portal and the language it was made for. */
const PORTAL_KEY = 'presentedAs';

function remembered(data: Record<string, unknown>): void {
  const as = data[PORTAL_KEY] as { clientId?: unknown; uiLocales?: unknown } | undefined;
  if (as && typeof as === 'object') presentAs({ clientId: as.clientId, uiLocales: as.uiLocales });
}

export type LinkKind = Extract<OneTimeTokenKind, 'verify-email' | 'invite' | 'reset-password'>;

export interface IssuedToken {
  /** The secret to put in a link: 256 bits, base64url. Never stored. */
  secret: string;
  expiresAt: Date;
}

export interface LinkToken {
  customerId: string | null;
  /** Non-secret context stored with the link (a bound password hash, a return flow id). */
  data: Record<string, unknown>;
}

const SECRET = /^[\w-]{20,100}$/;

/** The secret in a link's URL (`/verify/:secret`, `/invite/:secret`, ...), for route schemas. */
export const LinkSecret = z.string().regex(SECRET);

export async function issueLinkToken(store: Pick<Store, 'tokens'>, kind: OneTimeTokenKind, customerId: string, ttlMs: number, data: Record<string, unknown> = {}): Promise<IssuedToken> {
  const secret = randomBytes(32).toString('base64url');
  const now = new Date();
  const expiresAt = new Date(now.getTime() + ttlMs);
  const { clientId, uiLocales } = currentPresentation();
  const presented = clientId || uiLocales ? { [PORTAL_KEY]: { clientId, uiLocales } } : {};
  await store.tokens.create({ kind, hash: hashSecret(secret), customerId, data: { ...data, ...presented }, expiresAt, createdAt: now });
  return { secret, expiresAt };
}

/** Single-use: the first caller gets the token, every later or concurrent one null. */
export async function redeemLinkToken(store: Pick<Store, 'tokens'>, kind: OneTimeTokenKind, secret: unknown): Promise<LinkToken | null> {
  if (typeof secret !== 'string' || !SECRET.test(secret)) return null;
  const token = await store.tokens.consume(kind, hashSecret(secret), new Date());
  if (token) remembered(token.data);
  return token ? { customerId: token.customerId, data: token.data } : null;
}

/** Reads a link without spending it (a GET must never spend a link: mail scanners prefetch them). */
export async function peekLinkToken(store: Pick<Store, 'tokens'>, kind: OneTimeTokenKind, secret: unknown): Promise<LinkToken | null> {
  if (typeof secret !== 'string' || !SECRET.test(secret)) return null;
  const token = await store.tokens.peek(kind, hashSecret(secret), new Date());
  if (token) remembered(token.data);
  return token ? { customerId: token.customerId, data: token.data } : null;
}
