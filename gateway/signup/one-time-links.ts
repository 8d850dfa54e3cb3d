/**
 * Choosing a password with an emailed single-use link: the invite a new customer gets
 * (inbound email, portal visitor) and the password reset anyone can ask for.
 *
 *   GET/POST /invite/:secret            set a first password (kind `invite`)
 *   GET/POST /password/forgot           ask for a reset link (same answer whether or not
 *                                       the address has an account)
 *   GET/POST /password/reset/:secret    set a new password (kind `reset-password`); every
 *                                       session and token the account held is ended
 *
 * GET never spends a link (mail scanners prefetch links); the POST checks the password
 * first, then redeems the link once. An invite that reaches a pending sign-up (someone
 * typed the address into the portal form first) takes it over: following the link
 * proves the address, the pending password and links are discarded
 * (registration.takeOverPending), and the password set here is the account's.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { canonicalizeEmail } from '../../policies/index.ts';
import type { Customer } from '../../adapters/store.ts';
import type { GatewayContext } from '../runtime/context.ts';
import { createPasswordRules, passwordMessage } from './password-rules.ts';
import { formBody } from '../http/body.ts';
import { presentAs } from '../http/page-context.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { addressKey } from '../runtime/ratelimit.ts';
import { validated, type EdgeProblem } from '../http/validation.ts';
import { LinkSecret, peekLinkToken, redeemLinkToken } from './link-tokens.ts';
import { createSignupMail, RESET_TTL_MS } from './mail.ts';
import { hashSecret } from '../runtime/secrets.ts';

const SecretParams = z.object({ secret: LinkSecret });
const passwordForm = z.object({ password: z.string().max(1024), confirm: z.string().max(1024), csrf: z.string() });
type PasswordForm = z.output<typeof passwordForm>;
/** Whatever is typed (or not) gets the same answer: the address is read leniently. */
const forgotForm = z.object({ email: z.string().max(1024).catch(''), csrf: z.string() });

const LINKS = {
  invite: { path: '/invite', title: 'invite.titleInvite' },
  'reset-password': { path: '/password/reset', title: 'invite.titleReset' },
} as const;
type LinkKind = keyof typeof LINKS;

export function setPasswordRoutes(ctx: GatewayContext): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);
  const rules = createPasswordRules();
  const mail = createSignupMail({ store: ctx.store, views: ctx.views, issuer: ctx.config.ISSUER, sendMail: ctx.sendMail });

  function page(c: Context, action: string, title: string, errors: Record<string, string>, status = 200) {
    c.status = status;
    c.type = 'html';
    c.body = ctx.views.render('invite', { action, title: ctx.views.current().t(title), csrf: csrfToken(c), errors });
  }

  function gone(c: Context, message: string, code: string) {
    c.status = 410;
    c.type = 'html';
    const { t } = ctx.views.current();
    c.body = ctx.views.render('error', { title: t('error.linkExpiredTitle'), message: t(message), code });
  }

  const expiredLink = (c: Context, kind: LinkKind) => gone(c, 'error.linkExpired', `${kind}_invalid`);

  /** A malformed link is an expired one; an unreadable form asks for the password again. */
  function unreadable(kind: LinkKind) {
    return (c: Context, problem: EdgeProblem) => {
      if (problem.where === 'params') return expiredLink(c, kind);
      return page(c, `${LINKS[kind].path}/${c.params.secret}`, LINKS[kind].title, { password: ctx.views.current().t('invite.enterPassword') }, 400);
    };
  }

  /** The link's page with its form. */
  function linkPage(kind: LinkKind) {
    return validated({ params: SecretParams }, (c, { params }) => page(c, `${LINKS[kind].path}/${params.secret}`, LINKS[kind].title, {}), unreadable(kind));
  }

  /** Checks the form, then spends the link; null when the page was already answered. */
  async function redeem(c: Context, kind: LinkKind, secret: string, form: PasswordForm): Promise<{ customer: Customer; password: string } | null> {
    const action = `${LINKS[kind].path}/${secret}`;
    const title = LINKS[kind].title;
    if (form.password !== form.confirm) return page(c, action, title, { confirm: ctx.views.current().t('invite.mismatch') }, 400), null;
    // Check the password before spending the single-use link.
    const pending = await peekLinkToken(ctx.store, kind, secret);
    const owner = pending?.customerId ? await ctx.store.customers.get(pending.customerId) : null;
    const weak = await rules.check(form.password, owner?.email ?? '', owner ? [owner.name] : []);
    if (weak) return page(c, action, title, { password: passwordMessage(ctx.views.current().t, weak) }, 400), null;
    const redeemed = await redeemLinkToken(ctx.store, kind, secret);
    const customer = redeemed?.customerId ? await ctx.store.customers.get(redeemed.customerId) : null;
    if (!customer) return expiredLink(c, kind), null;
    return { customer, password: form.password };
  }

  /**
   * A reset request answers in the same time whatever the address, on every store: the
   * request itself does only address-independent work (limits, then the audit of the
   * request, which also fails closed with 503 when the store is down) and answers. The
   * address-dependent work runs after the answer has gone out, through the outbox: one
   * lookup, then the same store writes for every address (older links revoked, a link
   * stored). For an address without a usable account the link is a decoy bound to no
   * account (nobody ever sees its secret; it expires and is swept like any other) and
   * nobody is mailed; for an account, the mail is queued in the outbox and the outbox
   * worker sends it. A failure after the answer is logged; the person can ask again.
   * (Measured on FerretDB, whose lookup of an unknown address scans and is several times
   * slower than that of a known one: bench/reset-timing.ts.)
   */
  async function requestReset(email: string | null, ip: string): Promise<void> {
    await ctx.audit('customer.password_reset_requested', { actor: 'anonymous', data: { ip } });
    setImmediate(() => {
      prepareReset(email).catch((err: unknown) => ctx.logger.error({ err }, 'password reset could not be prepared'));
    });
  }

  async function prepareReset(email: string | null): Promise<void> {
    const found = email ? await ctx.store.customers.findByEmail(email) : null;
    const customer = found && found.status === 'active' && found.portalAccess ? found : null;
    if (customer) {
      await mail.passwordReset(customer);
      await ctx.audit('customer.password_reset_sent', { actor: 'system', target: customer.id });
      return;
    }
    // The same writes as mail.passwordReset, bound to no account.
    await ctx.store.tokens.revokeFor('reset-password', randomUUID());
    const now = new Date();
    await ctx.store.tokens.create({
      kind: 'reset-password', hash: hashSecret(randomBytes(32).toString('base64url')), customerId: null, data: {},
      expiresAt: new Date(now.getTime() + RESET_TTL_MS), createdAt: now,
    });
  }

  // ---- Invite -----------------------------------------------------------------------
  router.get('/invite/:secret', linkPage('invite'));
  router.post('/invite/:secret', formBody, csrf, validated({ params: SecretParams, body: passwordForm }, async (c, { params, body }) => {
    const redeemed = await redeem(c, 'invite', params.secret, body);
    if (!redeemed) return;
    let { customer } = redeemed;
    if (customer.status === 'pending') {
      const taken = await ctx.registration.takeOverPending(customer, { method: 'email', actor: `customer:${customer.id}`, context: { via: 'invite' } });
      if (taken.kind === 'denied') return gone(c, 'This invitation can no longer be used. Contact support.', 'invite_denied');
      customer = taken.customer;
    } else if (!customer.emailVerified) {
      // Following the emailed link proves control of the address: now the company and
      // its grants may apply (re-decided against the policy in force today).
      const completed = await ctx.registration.completeVerification(customer, `customer:${customer.id}`);
      if (completed.kind === 'denied') return gone(c, 'error.inviteDenied', 'invite_denied');
      customer = completed.customer;
    }
    if (!customer.portalAccess) {
      await ctx.audit('customer.email_confirmed', { actor: `customer:${customer.id}`, target: customer.id });
      c.type = 'html';
      c.body = ctx.views.render('invite-done', { email: customer.email, portal: false });
      return;
    }
    await ctx.store.customers.update(customer.id, {
      passwordHash: await ctx.hasher.hash(redeemed.password),
      emailVerified: true,
      status: customer.status === 'disabled' ? 'disabled' : 'active',
    });
    await ctx.audit('customer.invite_accepted', { actor: `customer:${customer.id}`, target: customer.id });
    c.type = 'html';
    c.body = ctx.views.render('invite-done', { email: customer.email, portal: true });
  }, unreadable('invite')));

  // ---- Password reset ---------------------------------------------------------------
  /**
   * The login page links here with its portal and language (`?client_id=&ui_locales=`), so
   * this page and the reset mail are the portal's; the form posts them back. An unknown
   * client shows the deployment's branding: nothing here is more than looks.
   */
  function presentFromQuery(c: Context): string {
    const clientId = typeof c.query.client_id === 'string' ? c.query.client_id.slice(0, 128) : undefined;
    const uiLocales = typeof c.query.ui_locales === 'string' ? c.query.ui_locales.slice(0, 200) : undefined;
    presentAs({ clientId, uiLocales });
    const query = new URLSearchParams({ ...(clientId ? { client_id: clientId } : {}), ...(uiLocales ? { ui_locales: uiLocales } : {}) }).toString();
    return `/password/forgot${query ? `?${query}` : ''}`;
  }

  router.get('/password/forgot', (c) => {
    const action = presentFromQuery(c);
    c.type = 'html';
    c.body = ctx.views.render('forgot', { csrf: csrfToken(c), sent: false, email: '', action });
  });
  router.post('/password/forgot', formBody, csrf, validated({ body: forgotForm }, async (c, { body }) => {
    presentFromQuery(c);
    const raw = body.email;
    const canonical = canonicalizeEmail(raw);
    await ctx.limits.hit('signupIp', c.ip);
    await ctx.limits.hit('resendAddress', addressKey(raw));
    await requestReset(canonical.ok ? canonical.email : null, c.ip);
    // The same answer whether or not the address has an account.
    c.type = 'html';
    c.body = ctx.views.render('forgot', { csrf: csrfToken(c), sent: true, email: raw.slice(0, 320) });
  }));
  router.get('/password/reset/:secret', linkPage('reset-password'));
  router.post('/password/reset/:secret', formBody, csrf, validated({ params: SecretParams, body: passwordForm }, async (c, { params, body }) => {
    const redeemed = await redeem(c, 'reset-password', params.secret, body);
    if (!redeemed) return;
    const { customer } = redeemed;
    if (customer.status !== 'active') return gone(c, 'error.linkUnusable', 'reset-password_invalid');
    await ctx.store.customers.update(customer.id, { passwordHash: await ctx.hasher.hash(redeemed.password), emailVerified: true });
    // Whoever knew the old password is signed out everywhere.
    await ctx.sessions.revokeAccount(customer.id);
    await ctx.audit('customer.password_reset', { actor: `customer:${customer.id}`, target: customer.id });
    c.type = 'html';
    c.body = ctx.views.render('invite-done', { email: customer.email, portal: true });
  }, unreadable('reset-password')));

  return router;
}
