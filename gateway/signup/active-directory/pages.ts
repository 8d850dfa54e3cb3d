/**
 * How both Active Directory styles end: the refusal page (worded by the one refusal
 * table, gateway/http/refusals.ts) or the sign-in, audited, back into the OIDC flow.
 *
 *   if (!outcome.ok) return renderAdRefusal(deps, c, uid, outcome.reason);
 *   await signInWithAd(deps, c, outcome.customer, 'activeDirectory');
 */
import type { Context } from 'koa';
import type { Customer } from '../../../adapters/store.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { refusal } from '../../http/refusals.ts';
import { finishLogin } from '../../oidc/interaction.ts';
import type { AdRefusal } from './resolve.ts';

export function renderAdRefusal(deps: Pick<GatewayContext, 'views'>, c: Context, uid: string, reason: AdRefusal): void {
  const page = refusal(reason, 'activeDirectory');
  c.status = page.status;
  c.type = 'html';
  c.body = deps.views.render('ad-refused', { uid, message: page.message, code: page.code });
}

/** `via` says which style signed the person in (audit): `activeDirectory` or `activeDirectoryConnector`. */
export async function signInWithAd(deps: Pick<GatewayContext, 'provider' | 'audit'>, c: Context, customer: Customer, via: string): Promise<void> {
  await deps.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: via } });
  await finishLogin(deps.provider, c, customer.id, ['ad']);
}
