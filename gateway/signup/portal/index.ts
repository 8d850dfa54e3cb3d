/**
 * The portal sign-up form, end to end, composed here: form -> pending account ->
 * verification email -> button press -> active account (company and grants applied
 * only then) -> back to the application. What lives in this folder and what it may
 * import: form.ts (the form), resend.ts (a new link), verify.ts (the link), origin.ts (inside an
 * interaction or standalone) and pages.ts. Modules here may import policies/, adapters/
 * store types, runtime/, http/, oidc/ (interaction loading) and the sign-up modules
 * beside this folder (mail, link tokens, the way back, password rules); every decision
 * goes through the registration service in the context. Nothing outside imports them
 * but gateway/app.ts (the routes and the login page's "Create an account" link).
 *
 *   routers.push(signupPortalRoutes(ctx));
 *   registerHref: portalRegisterLink(ctx.policy, serviceOfClient(ctx.clients))
 */
import Router from '@koa/router';
import { portalSignupOpenFor } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import type { PolicyRuntime } from '../../runtime/policy-runtime.ts';
import { createPasswordRules, type PasswordRules } from '../password-rules.ts';
import { createSignupMail } from '../mail.ts';
import { registerFormRoutes, type ServiceOf } from './form.ts';
import { resendRoutes } from './resend.ts';
import { verifyRoutes } from './verify.ts';

export interface SignupPortalOptions {
  /** Password rules (default: length, not the address, zxcvbn-ts strength). */
  passwordRules?: PasswordRules;
}

/**
 * The login page's "Create an account" link (gateway/app.ts), shown while the policy allows
 * portal sign-up and, on a portal bound to a service, while an account made now could use
 * that service (policies/access.ts portalSignupOpenFor).
 */
export function portalRegisterLink(policy: Pick<PolicyRuntime, 'current'>, serviceOf: ServiceOf): (uid: string, clientId: string | null) => string | null {
  return (uid, clientId) => (portalSignupOpenFor(policy.current(), serviceOf(clientId)) ? `/interaction/${encodeURIComponent(uid)}/register` : null);
}

type PortalDeps = Parameters<typeof registerFormRoutes>[0] & Parameters<typeof resendRoutes>[0] & Parameters<typeof verifyRoutes>[0] & Pick<GatewayContext, 'sendMail'>;

export function signupPortalRoutes(ctx: PortalDeps, options: SignupPortalOptions = {}): Router {
  const mail = createSignupMail({ store: ctx.store, views: ctx.views, issuer: ctx.config.ISSUER, sendMail: ctx.sendMail, verifyTtlMs: ctx.config.VERIFY_LINK_TTL_S * 1000 });
  const router = new Router();
  for (const part of [registerFormRoutes(ctx, options.passwordRules ?? createPasswordRules()), resendRoutes(ctx, mail), verifyRoutes(ctx)]) router.use(part.routes());
  return router;
}
