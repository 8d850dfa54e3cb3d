/**
 * How an external sign-in ends, whatever the source: the source's refusal page (worded
 * by the one refusal table, gateway/http/refusals.ts, with the request id as the only
 * reference: never the reason), or the sign-in, audited, back into the OIDC flow (or on
 * to the second step, for a staff account with a second factor).
 *
 *   if (outcome.kind === 'refuse') return refuseExternal(ctx, c, person.source, outcome.reason, uid);
 *   await signInExternal(ctx, c, outcome.customer, person, ['ad'], outcome.how);
 */
import type { Context } from 'koa';
import type { ExternalSource } from '../../../policies/index.ts';
import type { Customer } from '../../../adapters/store.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { refusal } from '../../http/refusals.ts';
import { finishLogin } from '../../oidc/interaction.ts';
import { beginSecondFactor, needsSecondFactor } from '../../oidc/second-factor-step.ts';
import { passwordSubject } from '../../runtime/login-throttle.ts';

/** The refusal page of the source's path (`google-refused` or `ad-refused`). */
export function refuseExternal(deps: Pick<GatewayContext, 'views'>, c: Context, source: ExternalSource, reason: string, uid?: string): void {
  const google = source === 'google';
  const page = refusal(reason, google ? 'google' : 'activeDirectory');
  c.status = page.status;
  c.type = 'html';
  c.body = deps.views.render(google ? 'google-refused' : 'ad-refused', { uid, message: page.message, reference: c.state.requestId });
}

/** The login method each source's sign-ins are audited under. */
const METHODS: Record<ExternalSource, string> = { google: 'google', directory: 'activeDirectory', connector: 'activeDirectoryConnector' };

/** Audits the sign-in and sends the browser back into the OIDC flow; `via` says how the account was reached. */
export async function signInExternal(deps: Pick<GatewayContext, 'provider' | 'audit' | 'store' | 'limits'>, c: Context, customer: Customer, source: ExternalSource, amr: string[], via: string): Promise<void> {
  // The per-address bound on hand-overs (Google round trips, connector assertions) counts
  // only those that end in no sign-in: an office signing in never uses it up.
  if (source !== 'directory') await deps.limits.refund('externalIp', c.ip);
  if (await needsSecondFactor(deps.store, customer)) {
    // A staff account an admin linked to this source: its second factor is asked all the same.
    await deps.audit('login.first_factor_accepted', { actor: `customer:${customer.id}`, target: customer.id, data: { method: METHODS[source], via, ip: c.ip } });
    const interaction = await deps.provider.interactionDetails(c.req, c.res);
    return beginSecondFactor(deps, c, interaction.uid, customer.id, passwordSubject(customer.email), amr);
  }
  await deps.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: METHODS[source], via, ip: c.ip } });
  await finishLogin(deps.provider, c, customer.id, amr);
}
