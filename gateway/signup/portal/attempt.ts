/**
 * The sign-up attempt this browser made. Each attempt gets a random id, kept in a signed
 * cookie on the form's path and written into the verification link the attempt sends
 * (with the password chosen in it, hashed). "Send a new link" finds this browser's own
 * live link by that id and binds the new link to the same password, so a verification
 * link only ever activates the password chosen in the attempt that sent it: a password
 * typed for the address by someone else first (a pre-account hijack) is never activated
 * by the owner's click. Nothing is stored beyond the links themselves.
 *
 *   const attempt = startAttempt(c, origin);                                 // before registering
 *   afterWrite: { mail: 'verification', attempt, returnTo }
 *   const bind = await attemptBinding(c, store, customer.id);                // { passwordHash, name, attempt } | null
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Store } from '../../../adapters/store.ts';
import { safeEqual } from '../../runtime/secrets.ts';
import { flowCookie } from '../../oidc/flow-state.ts';
import { basePath, type SignupOrigin } from './origin.ts';

const AttemptCookie = flowCookie('gh.signup', 24 * 3600_000);

/** What a verification link of an attempt carries (gateway/signup/mail.ts `bind`). */
const Bound = z.object({ passwordHash: z.string().min(1), name: z.string(), attempt: z.string().min(1) });
export type AttemptBinding = z.output<typeof Bound>;

/** A new attempt for this browser: its id, also set in the cookie the re-send form's POST carries. */
export function startAttempt(c: Context, origin: SignupOrigin): string {
  const id = randomBytes(32).toString('base64url');
  AttemptCookie.set(c, id, `${basePath(origin)}/register`);
  return id;
}

/** The binding of this browser's own live verification link for the account, or null (none, another browser's, or expired). */
export async function attemptBinding(c: Context, store: Pick<Store, 'tokens'>, customerId: string, now = new Date()): Promise<AttemptBinding | null> {
  const id = AttemptCookie.get(c);
  if (!id) return null;
  for (const token of await store.tokens.liveFor('verify-email', customerId, now)) {
    const bound = Bound.safeParse(token.data);
    if (bound.success && safeEqual(bound.data.attempt, id)) return bound.data;
  }
  return null;
}
