/**
 * The Google path's pages: a refusal (gateway/signup/external/pages.ts: the refusal
 * table's words and a request reference, never the reason), the "this sign-in has
 * expired" refusal of a state that cannot be trusted (a technical error, with its
 * code), and the sign-in that ends it all.
 */
import type { Context } from 'koa';
import type { Customer } from '../../../adapters/store.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { refuseExternal, signInExternal } from '../external/index.ts';
import { spendVerified } from './result.ts';

type Views = Pick<GatewayContext, 'views'>;

/** A refusal of the Google path: `reason` goes to the refusal table, never onto the page. */
export function refuseGoogle(deps: Views, c: Context, reason: string, uid?: string): void {
  refuseExternal(deps, c, 'google', reason, uid);
}

/** A callback without this browser's round trip, or with another state: nothing about it is trusted. */
export function refuseGoogleState(deps: Views, c: Context): void {
  c.status = 400;
  c.type = 'html';
  c.body = deps.views.render('google-refused', { message: deps.views.current().t('google.expired'), code: 'google_state_invalid' });
}

/** Spends the verified result, audits, and sends the browser back into the OIDC flow. */
export async function signInWithGoogle(
  deps: Pick<GatewayContext, 'provider' | 'audit' | 'store' | 'limits'>,
  c: Context,
  at: { uid: string; resultId: string },
  customer: Customer,
  amr: string[],
  via: string,
): Promise<void> {
  await spendVerified(c, deps.store, at.uid, at.resultId);
  await signInExternal(deps, c, customer, 'google', amr, via);
}
