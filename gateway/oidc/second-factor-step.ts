/**
 * The sign-in's second step for admins and agents who have a second factor: after the
 * right password (gateway/oidc/interactions.ts) the login prompt is not finished yet;
 * the browser comes here, proves the factor, and only then is the login result given to
 * oidc-provider, with `amr` naming both factors and `acr` saying a second one was used.
 *
 *   GET  /interaction/:uid/second-factor                   the page: passkey, app code, recovery code
 *   POST /interaction/:uid/second-factor/totp              code from the authenticator app (RFC 6238)
 *   POST /interaction/:uid/second-factor/recovery          one recovery code (used once)
 *   POST /interaction/:uid/second-factor/passkey/options   WebAuthn options (JSON) for this account's passkeys
 *   POST /interaction/:uid/second-factor/passkey           the authenticator's answer
 *
 * What the password proved lives server-side in a flow (gateway/oidc/flow-state.ts) bound
 * to the interaction; the browser holds its opaque id only. Wrong codes count against the
 * account (`secondFactor` limit) before they are checked; a right one gives its point
 * back. The device cookie for the account is issued when the whole sign-in succeeded.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { z } from 'zod';
import type { Customer, Store } from '../../adapters/store.ts';
import type { GatewayContext } from '../runtime/context.ts';
import { rateLimited } from '../runtime/ratelimit.ts';
import { secondFactors } from '../runtime/second-factor.ts';
import { formBody } from '../http/body.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { rememberDevice } from '../http/device-cookie.ts';
import { validated } from '../http/validation.ts';
import { defineFlow } from './flow-state.ts';
import { expiredWhenInvalid, interactionExpired, loadInteraction, UidParams } from './interaction.ts';

/** acr of a sign-in with a password only, and with a second factor too. */
export const ACR_PASSWORD = 'urn:gatehouse:acr:pwd';
export const ACR_SECOND_FACTOR = 'urn:gatehouse:acr:mfa';
/** amr values (RFC 8176) that say a second factor was used. */
export const SECOND_FACTOR_AMR = ['otp', 'hwk'] as const;

export const WRONG_CODE = 'That code did not work. Try again, or use another way.';

const PATH = '/interaction';
const SecondStep = defineFlow(
  'second-factor',
  // first: the amr of the first factor (pwd, or google / ad for a linked staff account).
  z.object({ uid: z.string(), accountId: z.string(), subject: z.string(), first: z.array(z.string()).default(['pwd']) }),
  10 * 60_000,
  'gh.flow.mfa',
);

/** Roles that sign in with a second factor when they have one. */
export const isStaff = (roles: readonly string[]) => roles.includes('admin') || roles.includes('agent');

/** Whether this account signs in with a second step: staff with TOTP or a passkey. */
export async function needsSecondFactor(store: Pick<Store, 'factors'>, customer: Pick<Customer, 'id' | 'roles'>): Promise<boolean> {
  if (!isStaff(customer.roles)) return false;
  const doc = await store.factors.get(customer.id);
  return Boolean(doc && (doc.totp || doc.passkeys.length > 0));
}

/** After the first factor (`first`: its amr): the flow that remembers it, and the browser sent to the second step. */
export async function beginSecondFactor(gw: Pick<GatewayContext, 'store'>, c: Context, uid: string, accountId: string, subject: string, first: string[] = ['pwd']): Promise<void> {
  const id = await SecondStep.start(gw.store, { uid, accountId, subject, first });
  SecondStep.cookie.set(c, id, PATH);
  c.status = 303;
  c.redirect(`${PATH}/${uid}/second-factor`);
}

const CodeForm = z.object({ code: z.string().max(64), csrf: z.string() });
const PasskeyForm = z.object({ response: z.string().max(16_384), csrf: z.string() });
const CsrfForm = z.object({ csrf: z.string() });

type StepDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'limits' | 'views' | 'keys' | 'audit'>;

export function secondFactorRoutes(gw: StepDeps): Router {
  const router = new Router({ prefix: PATH });
  const csrf = requireCsrf(gw.config.ISSUER);
  const factors = secondFactors({ store: gw.store, issuer: gw.config.ISSUER, cookieKeys: gw.keys.cookieKeys });

  /** This browser's second step for this interaction, still at the login prompt. */
  async function pending(c: Context, uid: string) {
    const interaction = await loadInteraction(gw.provider, c, { prompt: 'login' });
    const state = await SecondStep.read(gw.store, SecondStep.cookie.get(c));
    if (!state || state.uid !== interaction.uid || state.uid !== uid) throw interactionExpired('no second step for this interaction');
    return state;
  }

  async function render(c: Context, uid: string, accountId: string, status = 200, error?: string) {
    const summary = await factors.summary(accountId);
    c.status = status;
    c.type = 'html';
    c.body = gw.views.render('second-factor', { uid, csrf: csrfToken(c), totp: summary.totp, passkey: summary.passkeys.length > 0, error });
  }

  /** Counts the attempt against the account before the check; null when over the limit (the page says so). */
  async function admit(c: Context, uid: string, accountId: string): Promise<boolean> {
    const taken = await gw.limits.take('secondFactor', accountId);
    if (taken.ok) return true;
    const limited = rateLimited(taken.retryAfterS);
    c.set('Retry-After', limited.headers['retry-after']!);
    await gw.audit('login.second_factor_throttled', { actor: 'anonymous', target: accountId, data: { ip: c.ip } });
    await render(c, uid, accountId, 429, limited.message);
    return false;
  }

  async function finish(c: Context, state: { uid: string; accountId: string; subject: string; first: string[] }, amr: string, how: string) {
    await gw.limits.refund('secondFactor', state.accountId);
    if (!(await SecondStep.take(gw.store, SecondStep.cookie.get(c)))) throw interactionExpired('second step already used');
    SecondStep.cookie.clear(c, PATH);
    rememberDevice(c, state.subject);
    await gw.audit('login.success', { actor: `customer:${state.accountId}`, target: state.accountId, data: { method: state.first.join('+'), secondFactor: how } });
    await finishWithFactors(gw.provider, c, state.accountId, [...state.first, amr]);
  }

  async function refuse(c: Context, state: { uid: string; accountId: string }, how: string) {
    await gw.audit('login.second_factor_failure', { actor: 'anonymous', target: state.accountId, data: { ip: c.ip, secondFactor: how } });
    await render(c, state.uid, state.accountId, 401, WRONG_CODE);
  }

  router.get('/:uid/second-factor', validated({ params: UidParams }, async (c, { params }) => {
    const state = await pending(c, params.uid);
    await render(c, state.uid, state.accountId);
  }, expiredWhenInvalid));

  router.post('/:uid/second-factor/totp', formBody, csrf, validated({ params: UidParams, body: CodeForm }, async (c, { params, body }) => {
    const state = await pending(c, params.uid);
    if (!(await admit(c, state.uid, state.accountId))) return;
    if (!(await factors.checkTotp(state.accountId, body.code))) return refuse(c, state, 'totp');
    await finish(c, state, 'otp', 'totp');
  }, expiredWhenInvalid));

  router.post('/:uid/second-factor/recovery', formBody, csrf, validated({ params: UidParams, body: CodeForm }, async (c, { params, body }) => {
    const state = await pending(c, params.uid);
    if (!(await admit(c, state.uid, state.accountId))) return;
    if (!(await factors.checkRecoveryCode(state.accountId, body.code))) return refuse(c, state, 'recovery_code');
    await gw.audit('second_factor.recovery_code_used', { actor: `customer:${state.accountId}`, target: state.accountId, data: { left: (await factors.summary(state.accountId)).recoveryCodesLeft } });
    await finish(c, state, 'otp', 'recovery_code');
  }, expiredWhenInvalid));

  router.post('/:uid/second-factor/passkey/options', formBody, csrf, validated({ params: UidParams, body: CsrfForm }, async (c, { params }) => {
    const state = await pending(c, params.uid);
    c.body = await factors.authenticationOptions(state.accountId);
  }, expiredWhenInvalid));

  router.post('/:uid/second-factor/passkey', formBody, csrf, validated({ params: UidParams, body: PasskeyForm }, async (c, { params, body }) => {
    const state = await pending(c, params.uid);
    if (!(await admit(c, state.uid, state.accountId))) return;
    let response: unknown;
    try {
      response = JSON.parse(body.response);
    } catch {
      return refuse(c, state, 'passkey');
    }
    const ok = AuthenticationAnswer.safeParse(response).success && (await factors.checkPasskey(state.accountId, response as Parameters<typeof factors.checkPasskey>[1]));
    if (!ok) return refuse(c, state, 'passkey');
    await finish(c, state, 'hwk', 'passkey');
  }, expiredWhenInvalid));

  return router;
}

/** The outer shape of a WebAuthn authentication answer (the library checks the rest). */
const AuthenticationAnswer = z.object({
  id: z.string().max(1024),
  rawId: z.string().max(1024),
  type: z.literal('public-key'),
  response: z.object({ clientDataJSON: z.string(), authenticatorData: z.string(), signature: z.string() }).passthrough(),
}).passthrough();

/** The login result with the factors used; `acr` says whether a second factor was among them. */
export async function finishWithFactors(provider: Provider, c: Context, accountId: string, amr: string[]): Promise<void> {
  const acr = amr.some((m) => (SECOND_FACTOR_AMR as readonly string[]).includes(m)) ? ACR_SECOND_FACTOR : ACR_PASSWORD;
  const redirectTo = await provider.interactionResult(c.req, c.res, { login: { accountId, amr, acr } }, { mergeWithLastSubmission: false });
  c.status = 303;
  c.redirect(redirectTo);
}

