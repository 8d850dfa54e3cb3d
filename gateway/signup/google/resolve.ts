/**
 * The one identity-resolution entry point of the Google path: what a verified Google
 * identity becomes.
 *
 *   known identity (issuer + subject)   sign in, if the account may (policies canSignIn)
 *   address of an existing account      never linked silently: the person proves they own
 *                                       that account first (its password, linkGoogleIdentity)
 *   anyone else                         THE registration service, method `google` (the
 *                                       policy decides), then sign in
 *
 *   const next = await resolveGoogleIdentity(ctx, verified, { ip });
 *   // { kind: 'sign-in', customer, via } | { kind: 'link', email } | { kind: 'refuse', code }
 */
import { canonicalizeEmail, canSignIn, type DecisionReason } from '../../../policies/index.ts';
import { StoreConflictError, type Customer } from '../../../adapters/store.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import type { RefusalCode } from '../../http/refusals.ts';
import type { VerifiedGoogle } from './result.ts';

export type GoogleResolution =
  | { kind: 'sign-in'; customer: Customer; via: 'identity' | 'registration' }
  | { kind: 'link'; email: string }
  | { kind: 'refuse'; code: RefusalCode | DecisionReason };

type ResolveDeps = Pick<GatewayContext, 'store' | 'registration' | 'audit'>;

const holds = (customer: Customer, verified: VerifiedGoogle) =>
  customer.identities.some((i) => i.issuer === verified.issuer && i.subject === verified.subject);

export async function resolveGoogleIdentity(deps: ResolveDeps, verified: VerifiedGoogle, context: { ip: string; requestId?: string }): Promise<GoogleResolution> {
  const known = await deps.store.customers.findByIdentity(verified.issuer, verified.subject);
  if (known) {
    if (canSignIn(known)) return { kind: 'sign-in', customer: known, via: 'identity' };
    await deps.audit('login.failure', { actor: 'anonymous', target: known.id, data: { method: 'google', reason: 'account_inactive', ip: context.ip } });
    return { kind: 'refuse', code: 'account_unavailable' };
  }

  const canonical = canonicalizeEmail(verified.email);
  if (!canonical.ok) return { kind: 'refuse', code: 'invalid_email' };
  if (await deps.store.customers.findByEmail(canonical.email)) return { kind: 'link', email: canonical.email };

  const result = await deps.registration.register({
    method: 'google',
    email: verified.email,
    emailVerified: true,
    name: verified.name,
    identity: { issuer: verified.issuer, subject: verified.subject },
    hostedDomain: verified.hd,
    actor: 'anonymous',
    context,
  });
  if (result.kind === 'denied') return { kind: 'refuse', code: result.decision.reason };
  // Lost a race with a concurrent sign-up for the same address: that account is proven first.
  if (result.kind === 'existing' && !holds(result.customer, verified)) return { kind: 'link', email: result.customer.email };
  if (!canSignIn(result.customer)) return { kind: 'refuse', code: 'account_unavailable' };
  return { kind: 'sign-in', customer: result.customer, via: result.kind === 'created' ? 'registration' : 'identity' };
}

/**
 * Links the verified identity to `customer`, whose password the person just proved.
 * Null when the account vanished; throws nothing for a taken identity: `identity_taken`.
 */
export async function linkGoogleIdentity(deps: Pick<GatewayContext, 'store' | 'audit'>, customer: Customer, verified: VerifiedGoogle, ip: string): Promise<{ ok: true; customer: Customer } | { ok: false; code: 'identity_taken' | 'gone' }> {
  let linked: Customer | null;
  try {
    linked = await deps.store.customers.linkIdentity(customer.id, { issuer: verified.issuer, subject: verified.subject });
  } catch (err) {
    if (err instanceof StoreConflictError && err.code === 'identity_taken') return { ok: false, code: 'identity_taken' };
    throw err;
  }
  if (!linked) return { ok: false, code: 'gone' };
  await deps.audit('identity.link', { actor: `customer:${linked.id}`, target: linked.id, data: { issuer: verified.issuer, subject: verified.subject, ip } });
  return { ok: true, customer: linked };
}
