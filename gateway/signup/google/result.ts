/**
 * What Google proved (issuer, subject, address, name, hd), kept server-side as a flow
 * until the person is signed in or has linked the identity to their account: its id
 * rides in a cookie on /interaction/<uid>/google, where the interaction cookie is sent
 * too, and it names the interaction it belongs to.
 *
 *   await keepVerified(c, store, verified);
 *   const { id, verified } = await loadVerified(c, store, uid);    // 400 google_state_invalid when missing or foreign
 *   await spendVerified(c, store, uid, id);                        // single use
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { Store } from '../../../adapters/store.ts';
import { AppError } from '../../http/errors.ts';
import { safeEqual } from '../../runtime/secrets.ts';
import { defineFlow } from '../../oidc/flow-state.ts';
import { FLOW_TTL_MS } from './strategy.ts';

export const GOOGLE_EXPIRED = 'This Google sign-in has expired or does not belong to this browser. Go back to the application and start again.';

export const GoogleResult = defineFlow('google-result', z.object({
  uid: z.string().regex(/^[\w-]{1,128}$/),
  issuer: z.string(),
  subject: z.string(),
  email: z.string(),
  name: z.string().optional(),
  hd: z.string().optional(),
}), FLOW_TTL_MS, 'gh.google.result');

export type VerifiedGoogle = z.output<typeof GoogleResult.schema>;

export const googleStateInvalid = () => new AppError('google_state_invalid', 400, GOOGLE_EXPIRED);

/** Where the result's cookie lives and where the person continues: /interaction/<uid>/google. */
export function resultPath(uid: string): string {
  return `/interaction/${uid}/google`;
}

export async function keepVerified(c: Context, store: Pick<Store, 'tokens'>, verified: VerifiedGoogle): Promise<void> {
  GoogleResult.cookie.set(c, await GoogleResult.start(store, verified), resultPath(verified.uid));
}

/** This browser's verified result, for this interaction. */
export async function loadVerified(c: Context, store: Pick<Store, 'tokens'>, uid: string): Promise<{ id: string; verified: VerifiedGoogle }> {
  const id = GoogleResult.cookie.get(c);
  const verified = await GoogleResult.read(store, id);
  if (!id || !verified || !safeEqual(verified.uid, uid)) throw googleStateInvalid();
  return { id, verified };
}

/** One-time: the result is used up; a concurrent second use is refused. */
export async function spendVerified(c: Context, store: Pick<Store, 'tokens'>, uid: string, id: string): Promise<void> {
  GoogleResult.cookie.clear(c, resultPath(uid));
  if (!(await GoogleResult.take(store, id))) throw googleStateInvalid();
}
