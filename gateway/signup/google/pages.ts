/**
 * The Google path's pages: a refusal (worded by the one refusal table,
 * gateway/http/refusals.ts), the "this sign-in has expired" refusal of a state that
 * cannot be trusted, the link page (prove the existing account's password), and the
 * sign-in that ends it all.
 */
import type { Context } from 'koa';
import type { Customer, Store } from '../../../adapters/store.ts';
import type { DecisionReason } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { csrfToken } from '../../http/csrf.ts';
import { refusal, type RefusalCode } from '../../http/refusals.ts';
import { finishLogin } from '../../oidc/interaction.ts';
import { GOOGLE_EXPIRED, spendVerified } from './result.ts';

export const GENERIC_LINK_FAILURE = 'The password is not right, or this account cannot be linked to Google.';

type Views = Pick<GatewayContext, 'views'>;

export function refuseGoogle(deps: Views, c: Context, code: RefusalCode | DecisionReason, uid?: string): void {
  const page = refusal(code, 'google');
  c.status = page.status;
  c.type = 'html';
  c.body = deps.views.render('google-refused', { title: 'Google sign-in refused', message: page.message, code: page.code, uid });
}

/** A callback without this browser's round trip, or with another state: nothing about it is trusted. */
export function refuseGoogleState(deps: Views, c: Context): void {
  c.status = 400;
  c.type = 'html';
  c.body = deps.views.render('google-refused', { title: 'Google sign-in refused', message: GOOGLE_EXPIRED, code: 'google_state_invalid' });
}

export function renderLinkPage(deps: Views, c: Context, uid: string, email: string, error?: string): void {
  c.type = 'html';
  c.body = deps.views.render('link-account', { uid, email, csrf: csrfToken(c), error });
}

/** Spends the verified result, audits, and sends the browser back into the OIDC flow. */
export async function signInWithGoogle(
  deps: Pick<GatewayContext, 'provider' | 'audit'> & { store: Pick<Store, 'tokens'> },
  c: Context,
  at: { uid: string; resultId: string },
  customer: Customer,
  amr: string[],
  via: string,
): Promise<void> {
  await spendVerified(c, deps.store, at.uid, at.resultId);
  await deps.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: 'google', via, ip: c.ip } });
  await finishLogin(deps.provider, c, customer.id, amr);
}
