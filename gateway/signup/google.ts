/**
 * Sign in with Google: a sign-up and sign-in path (issue #4), through
 * passport-google-oauth20 driven by a small Koa adapter (no express, no sessions).
 *
 *   GET  /interaction/:uid/google           start: redirect to Google with state + PKCE (S256)
 *   GET  /federation/google/callback        the one registered redirect URI: checks state,
 *                                           exchanges the code, reads userinfo, checks
 *                                           email_verified and the hosted-domain rule,
 *                                           keeps the result server-side, then sends the
 *                                           browser back under /interaction/<uid>
 *   GET  /interaction/:uid/google/complete  known identity -> sign in; unknown identity
 *                                           whose email is free -> registration service;
 *                                           email of an existing account -> link page
 *   POST /interaction/:uid/google/link      that account's local password, then link + sign in
 *
 * Both halves of the journey are flows (gateway/oidc/flow-state.ts), kept server-side
 * for 10 minutes and bound to the interaction uid: the round trip (the `state` handle
 * sent to Google, the PKCE code_verifier, the uid), whose id rides in a cookie on
 * /federation/google; and the verified result (issuer, subject, address, name, hd),
 * whose id rides in a cookie on /interaction/<uid>/google. The browser holds two opaque
 * ids and nothing else; a callback without this browser's round trip, or with a state
 * that is not its own, is refused. Nothing about the identity is ever read from query
 * parameters.
 *
 *   googleLoginOption(config) is the login page's "Sign in with Google" button when enabled.
 */
import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { Strategy as GoogleStrategy, type StrategyOptions, type VerifyCallback as ProfileVerifyCallback } from 'passport-google-oauth20';
import { z } from 'zod';
import { canonicalizeDomain, canonicalizeEmail, canSignIn, type DecisionReason } from '../../policies/index.ts';
import { StoreConflictError, type Customer, type Store } from '../../adapters/store.ts';
import type { GatewayContext } from '../runtime/context.ts';
import type { LoginOption } from '../oidc/interactions.ts';
import type { Config } from '../runtime/config.ts';
import { AppError, unavailable } from '../http/errors.ts';
import { safeEqual } from '../runtime/secrets.ts';
import { defineFlow } from '../oidc/flow-state.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { formBody } from '../http/body.ts';
import { formRateLimited } from '../http/form-limit.ts';
import { refusal, type RefusalCode } from '../http/refusals.ts';
import { passwordMatches } from '../runtime/passwords.ts';
import { finishLogin, loadInteraction } from '../oidc/interaction.ts';

export const GOOGLE_SCOPE = ['openid', 'email', 'profile'];
export const CALLBACK_PATH = '/federation/google/callback';
/** How long a Google round trip and the link page may take. */
const FLOW_TTL_MS = 10 * 60 * 1000;
const USERINFO_TIMEOUT_MS = 10_000;
const ROUND_TRIP_PATH = '/federation/google';
const UID = z.string().regex(/^[\w-]{1,128}$/);

/** The round trip to Google: the `state` handle sent along, the PKCE verifier, the interaction it belongs to. */
const GoogleRoundTrip = defineFlow('google-round-trip', z.object({
  uid: UID,
  handle: z.string().regex(/^[\w-]{43}$/),
  verifier: z.string().min(43).max(128),
}), FLOW_TTL_MS, 'gh.google.state');

/** What Google proved, kept until the person is signed in (or links the identity to their account). */
const GoogleResult = defineFlow('google-result', z.object({
  uid: UID,
  issuer: z.string(),
  subject: z.string(),
  email: z.string(),
  name: z.string().optional(),
  hd: z.string().optional(),
}), FLOW_TTL_MS, 'gh.google.result');
type Pending = z.output<typeof GoogleResult.schema>;
export const GENERIC_LINK_FAILURE = 'The password is not right, or this account cannot be linked to Google.';
const EXPIRED = 'This Google sign-in has expired or does not belong to this browser. Go back to the application and start again.';

/** Enabled when both client id and secret are set. */
export function googleEnabled(config: Pick<Config, 'GOOGLE_CLIENT_ID' | 'GOOGLE_CLIENT_SECRET'>): boolean {
  return Boolean(config.GOOGLE_CLIENT_ID && config.GOOGLE_CLIENT_SECRET);
}

// ---------------------------------------------------------------------------
// Claims: what Google's userinfo must say before anything else happens.
// ---------------------------------------------------------------------------

const userinfoSchema = z.object({
  sub: z.string().min(1).max(255),
  email: z.string().max(512).optional(),
  email_verified: z.unknown().optional(),
  name: z.string().max(512).optional(),
  hd: z.string().max(255).optional(),
});

export interface GoogleClaims {
  sub: string;
  email: string | undefined;
  emailVerified: boolean;
  name: string | undefined;
  hd: string | undefined;
}

export type GoogleClaimsCheck =
  | { ok: true }
  | { ok: false; reason: 'email_missing' | 'email_unverified' | 'hosted_domain_mismatch' };

/** Parses userinfo JSON; `email_verified` counts only when it is the boolean true. */
export function parseGoogleClaims(json: unknown): GoogleClaims | null {
  const parsed = userinfoSchema.safeParse(json);
  if (!parsed.success) return null;
  const u = parsed.data;
  return { sub: u.sub, email: u.email, emailVerified: u.email_verified === true, name: u.name, hd: u.hd };
}

/**
 * Only verified addresses; with a hosted-domain rule, the returned `hd` claim must be
 * that domain (the `hd` request parameter is a hint to Google, never trusted alone).
 *
 * @example checkGoogleClaims({ ...claims, hd: 'other.com' }, 'corp.com') // { ok: false, reason: 'hosted_domain_mismatch' }
 */
export function checkGoogleClaims(claims: GoogleClaims, hostedDomain: string | undefined): GoogleClaimsCheck {
  if (!claims.email) return { ok: false, reason: 'email_missing' };
  if (!claims.emailVerified) return { ok: false, reason: 'email_unverified' };
  if (hostedDomain) {
    const want = canonicalizeDomain(hostedDomain);
    const got = claims.hd ? canonicalizeDomain(claims.hd) : null;
    if (!want.ok || !got?.ok || want.domain !== got.domain) return { ok: false, reason: 'hosted_domain_mismatch' };
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------
// State store: passport-oauth2's PKCE store contract, kept in the round-trip flow.
// ---------------------------------------------------------------------------

/** What the strategy sees as `req`: the query, plus the Koa context for cookies and the store. */
interface AdapterRequest {
  query: Record<string, unknown>;
  body?: undefined;
  headers: Record<string, unknown>;
  koa: Context;
  store: Pick<Store, 'tokens'>;
}

type StoreCallback = (err: Error | null, state?: string) => void;
type StateVerifyCallback = (err: Error | null, ok: string | false, state?: unknown) => void;

/**
 * passport-oauth2 state store (PKCE arity: store(req, verifier, state, meta, cb) and
 * verify(req, providedState, cb)). `state` passed to authenticate is `{ uid }`. The
 * round trip is a flow: the browser holds its id only. verify() takes it (one state,
 * one callback) and clears the cookie.
 */
export const flowStateStore = {
  store(req: AdapterRequest, verifier: string, state: unknown, _meta: unknown, callback: StoreCallback): void {
    const uid = (state as { uid?: unknown } | undefined)?.uid;
    if (typeof uid !== 'string') return callback(new Error('google state store: interaction uid missing'));
    const handle = randomBytes(32).toString('base64url');
    GoogleRoundTrip.start(req.store, { uid, handle, verifier }).then(
      (id) => {
        GoogleRoundTrip.cookie.set(req.koa, id, ROUND_TRIP_PATH);
        callback(null, handle);
      },
      (err: Error) => callback(err),
    );
  },
  verify(req: AdapterRequest, providedState: unknown, callback: StateVerifyCallback): void {
    const id = GoogleRoundTrip.cookie.get(req.koa);
    GoogleRoundTrip.cookie.clear(req.koa, ROUND_TRIP_PATH);
    GoogleRoundTrip.take(req.store, id).then(
      (flow) => {
        if (!flow || typeof providedState !== 'string' || !safeEqual(flow.handle, providedState)) {
          return callback(null, false, { message: 'state_mismatch' });
        }
        callback(null, flow.verifier, { uid: flow.uid });
      },
      (err: Error) => callback(err, false),
    );
  },
};

// ---------------------------------------------------------------------------
// Passport adapter: one strategy, per-request success/fail/error/redirect overrides.
// ---------------------------------------------------------------------------

type StrategyOutcome =
  | { kind: 'success'; user: GoogleClaims; info: { state?: { uid?: string } } }
  | { kind: 'fail'; challenge: unknown; status: number | undefined }
  | { kind: 'redirect'; url: string }
  | { kind: 'error'; error: unknown };

interface StrategyActions {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  redirect(url: string, status?: number): void;
  error(err: unknown): void;
  pass(): void;
  authenticate(req: unknown, options?: unknown): void;
}

/** Runs `strategy.authenticate` once for this request and resolves with what it decided. */
export function runStrategy(strategy: GoogleStrategy, req: AdapterRequest, options: Record<string, unknown>): Promise<StrategyOutcome> {
  return new Promise((resolve) => {
    const run = Object.create(strategy) as StrategyActions;
    run.success = (user, info) => resolve({ kind: 'success', user: user as GoogleClaims, info: (info ?? {}) as { state?: { uid?: string } } });
    run.fail = (challenge, status) => resolve({ kind: 'fail', challenge, status });
    run.redirect = (url) => resolve({ kind: 'redirect', url });
    run.error = (error) => resolve({ kind: 'error', error });
    run.pass = () => resolve({ kind: 'error', error: new Error('strategy passed') });
    try {
      run.authenticate(req, options);
    } catch (error) {
      resolve({ kind: 'error', error });
    }
  });
}

/**
 * passport-google-oauth20's strategy with its documented extension point, `userProfile`,
 * overridden: userinfo is fetched with the access token in the Authorization header
 * (never in the URL, where the library's default GET puts it) and parsed with our schema,
 * so the verify callback receives GoogleClaims (or null) and no private field of the
 * library is read or written.
 */
type ClaimsVerify = (accessToken: string, refreshToken: string, params: unknown, claims: GoogleClaims | null, done: ProfileVerifyCallback) => void;

class GoogleUserinfoStrategy extends GoogleStrategy {
  readonly userinfoUrl: string;

  constructor(options: StrategyOptions & { userProfileURL: string }, verify: ClaimsVerify) {
    // The library types `profile` as its Profile; with userProfile overridden it is GoogleClaims | null.
    super(options, verify as never);
    this.userinfoUrl = options.userProfileURL;
  }

  override userProfile(accessToken: string, done: (err?: unknown, profile?: unknown) => void): void {
    fetch(this.userinfoUrl, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' }, signal: AbortSignal.timeout(USERINFO_TIMEOUT_MS) })
      .then(async (res) => {
        if (!res.ok) throw new Error(`userinfo answered ${res.status}`);
        return parseGoogleClaims(await res.json());
      })
      .then((claims) => done(null, claims), (err: unknown) => done(err));
  }
}

export function createGoogleStrategy(config: Config): GoogleStrategy {
  return new GoogleUserinfoStrategy(
    {
      clientID: config.GOOGLE_CLIENT_ID!,
      clientSecret: config.GOOGLE_CLIENT_SECRET!,
      authorizationURL: config.GOOGLE_AUTHORIZATION_URL,
      tokenURL: config.GOOGLE_TOKEN_URL,
      userProfileURL: config.GOOGLE_USERINFO_URL,
      callbackURL: `${config.ISSUER}${CALLBACK_PATH}`,
      scope: GOOGLE_SCOPE,
      state: true,
      pkce: true,
      store: flowStateStore as never,
    },
    (_accessToken: string, _refreshToken: string, _params: unknown, claims: GoogleClaims | null, done: ProfileVerifyCallback) => {
      // Userinfo is the only source of the identity; anything malformed is a failure.
      if (!claims) return done(null, false, { message: 'userinfo_invalid' });
      done(null, claims as unknown as Express.User);
    },
  );
}

function resultCookiePath(uid: string): string {
  return `/interaction/${uid}/google`;
}

// ---------------------------------------------------------------------------
// Routes.
// ---------------------------------------------------------------------------

const linkForm = z.object({ password: z.string().max(1024), csrf: z.string() });

/** The login page's Google button (listed in gateway/app.ts), or null when Google is not configured. */
export function googleLoginOption(config: Pick<Config, 'GOOGLE_CLIENT_ID' | 'GOOGLE_CLIENT_SECRET'>): LoginOption | null {
  if (!googleEnabled(config)) return null;
  return (uid) => ({ label: 'Sign in with Google', href: `/interaction/${encodeURIComponent(uid)}/google` });
}

export function googleSignupRoutes(gw: GatewayContext): Router {
  const router = new Router();
  const { config } = gw;
  if (!googleEnabled(config)) return router;

  const strategy = createGoogleStrategy(config);
  const csrf = requireCsrf(config.ISSUER);

  function adapterRequest(ctx: Context): AdapterRequest {
    return { query: { ...ctx.query }, body: undefined, headers: ctx.headers, koa: ctx, store: gw.store };
  }

  /** Ends this browser's round trip, if any (a callback that cannot be used). */
  async function dropRoundTrip(ctx: Context): Promise<void> {
    const id = GoogleRoundTrip.cookie.get(ctx);
    GoogleRoundTrip.cookie.clear(ctx, ROUND_TRIP_PATH);
    await GoogleRoundTrip.take(gw.store, id);
  }

  const loginInteraction = (ctx: Context) => loadInteraction(gw.provider, ctx, { prompt: 'login' });

  function refuse(ctx: Context, code: RefusalCode | DecisionReason, uid?: string): void {
    const page = refusal(code, 'google');
    ctx.status = page.status;
    ctx.type = 'html';
    ctx.body = gw.views.render('google-refused', { title: 'Google sign-in refused', message: page.message, code: page.code, uid });
  }

  function refuseState(ctx: Context): void {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = gw.views.render('google-refused', { title: 'Google sign-in refused', message: EXPIRED, code: 'google_state_invalid' });
  }

  /** This browser's verified Google result, for this interaction. */
  async function loadPending(ctx: Context, uid: string): Promise<{ secret: string; pending: Pending }> {
    const secret = GoogleResult.cookie.get(ctx);
    const pending = await GoogleResult.read(gw.store, secret);
    if (!secret || !pending || !safeEqual(pending.uid, uid)) throw new AppError('google_state_invalid', 400, EXPIRED);
    return { secret, pending };
  }

  /** One-time: the pending result is used up; a concurrent second use is refused. */
  async function consumePending(ctx: Context, uid: string, secret: string): Promise<void> {
    GoogleResult.cookie.clear(ctx, resultCookiePath(uid));
    if (!(await GoogleResult.take(gw.store, secret))) throw new AppError('google_state_invalid', 400, EXPIRED);
  }

  async function signIn(ctx: Context, uid: string, secret: string, customer: Customer, amr: string[], how: string): Promise<void> {
    await consumePending(ctx, uid, secret);
    await gw.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: 'google', via: how, ip: ctx.ip } });
    await finishLogin(gw.provider, ctx, customer.id, amr);
  }

  function renderLink(ctx: Context, uid: string, email: string, error?: string): void {
    ctx.type = 'html';
    ctx.body = gw.views.render('link-account', { uid, email, csrf: csrfToken(ctx), error });
  }

  // Start: from the login page's button.
  router.get('/interaction/:uid/google', async (ctx) => {
    const interaction = await loginInteraction(ctx);
    // Each Google sign-in or sign-up counts as a login attempt from this IP.
    await gw.limits.hit('loginIp', ctx.ip);
    const options: Record<string, unknown> = { state: { uid: interaction.uid } };
    if (config.GOOGLE_HOSTED_DOMAIN) options.hd = config.GOOGLE_HOSTED_DOMAIN;
    const outcome = await runStrategy(strategy, adapterRequest(ctx), options);
    if (outcome.kind !== 'redirect') throw unavailable('google strategy did not redirect', outcome.kind === 'error' ? outcome.error : undefined);
    ctx.status = 303;
    ctx.redirect(outcome.url);
  });

  // Callback: the fixed, registered redirect URI.
  router.get(CALLBACK_PATH, async (ctx) => {
    const state = ctx.query.state;
    const hasCode = typeof ctx.query.code === 'string' || typeof ctx.query.error === 'string';
    if (typeof state !== 'string' || state === '' || !hasCode) {
      await dropRoundTrip(ctx);
      await gw.audit('google.refused', { actor: 'anonymous', data: { reason: 'state_missing', ip: ctx.ip } });
      refuseState(ctx);
      return;
    }
    const expected = await GoogleRoundTrip.read(gw.store, GoogleRoundTrip.cookie.get(ctx));
    const outcome = await runStrategy(strategy, adapterRequest(ctx), {});
    if (outcome.kind !== 'success') await dropRoundTrip(ctx);
    if (outcome.kind === 'fail') {
      const stateRefused = outcome.status === 403;
      await gw.audit('google.refused', { actor: 'anonymous', data: { reason: stateRefused ? 'state_mismatch' : 'cancelled_or_invalid', ip: ctx.ip } });
      if (stateRefused) refuseState(ctx);
      else refuse(ctx, 'google_cancelled', expected?.uid);
      return;
    }
    if (outcome.kind !== 'success') {
      gw.logger.warn({ err: outcome.kind === 'error' ? outcome.error : undefined }, 'google sign-in failed');
      throw unavailable('google code exchange or userinfo failed', outcome.kind === 'error' ? outcome.error : undefined);
    }
    const uid = outcome.info.state?.uid;
    if (typeof uid !== 'string') throw new AppError('google_state_invalid', 400, EXPIRED);
    const claims = outcome.user;
    const check = checkGoogleClaims(claims, config.GOOGLE_HOSTED_DOMAIN);
    if (!check.ok) {
      await gw.audit('google.refused', { actor: 'anonymous', target: claims.email?.slice(0, 320), data: { reason: check.reason, subject: claims.sub, hd: claims.hd, ip: ctx.ip } });
      refuse(ctx, `google_${check.reason}`, uid);
      return;
    }
    const pending: Pending = { uid, issuer: config.GOOGLE_ISSUER, subject: claims.sub, email: claims.email! };
    if (claims.name) pending.name = claims.name;
    if (claims.hd) pending.hd = claims.hd;
    GoogleResult.cookie.set(ctx, await GoogleResult.start(gw.store, pending), resultCookiePath(uid));
    ctx.status = 303;
    ctx.redirect(`${resultCookiePath(encodeURIComponent(uid))}/complete`);
  });

  // Complete: under /interaction/<uid>, where the interaction cookie is sent.
  router.get('/interaction/:uid/google/complete', async (ctx) => {
    const uid = ctx.params.uid!;
    await loginInteraction(ctx);
    const { secret, pending } = await loadPending(ctx, uid);

    const known = await gw.store.customers.findByIdentity(pending.issuer, pending.subject);
    if (known) {
      if (!canSignIn(known)) {
        await gw.audit('login.failure', { actor: 'anonymous', target: known.id, data: { method: 'google', reason: 'account_inactive', ip: ctx.ip } });
        refuse(ctx, 'account_unavailable', uid);
        return;
      }
      await signIn(ctx, uid, secret, known, ['google'], 'identity');
      return;
    }

    const canonical = canonicalizeEmail(pending.email);
    if (!canonical.ok) {
      refuse(ctx, 'invalid_email', uid);
      return;
    }
    if (await gw.store.customers.findByEmail(canonical.email)) {
      // Never link silently: the person proves they own the local account first.
      renderLink(ctx, uid, canonical.email);
      return;
    }

    const result = await gw.registration.register({
      method: 'google',
      email: pending.email,
      emailVerified: true,
      name: pending.name,
      identity: { issuer: pending.issuer, subject: pending.subject },
      hostedDomain: pending.hd,
      actor: 'anonymous',
      context: { ip: ctx.ip, requestId: ctx.state.requestId },
    });
    if (result.kind === 'denied') {
      refuse(ctx, result.decision.reason, uid);
      return;
    }
    const holds = result.customer.identities.some((i) => i.issuer === pending.issuer && i.subject === pending.subject);
    if (result.kind === 'existing' && !holds) {
      renderLink(ctx, uid, result.customer.email);
      return;
    }
    if (!canSignIn(result.customer)) {
      refuse(ctx, 'account_unavailable', uid);
      return;
    }
    await signIn(ctx, uid, secret, result.customer, ['google'], result.kind === 'created' ? 'registration' : 'identity');
  });

  // Link: the existing account's local password, rate limited like login.
  router.post('/interaction/:uid/google/link', formBody, csrf, async (ctx) => {
    const uid = ctx.params.uid!;
    await loginInteraction(ctx);
    const { secret, pending } = await loadPending(ctx, uid);
    const canonical = canonicalizeEmail(pending.email);
    if (!canonical.ok) throw new AppError('google_state_invalid', 400, EXPIRED);
    const form = linkForm.safeParse(ctx.request.body);
    if (!form.success) {
      ctx.status = 400;
      renderLink(ctx, uid, canonical.email, GENERIC_LINK_FAILURE);
      return;
    }
    const limited = await formRateLimited(ctx, gw.limits, [['loginIp', ctx.ip], ['loginAccount', canonical.email]]);
    if (limited) return renderLink(ctx, uid, canonical.email, limited);

    const customer = await gw.store.customers.findByEmail(canonical.email);
    const passwordOk = await passwordMatches(gw.hasher, customer?.passwordHash, form.data.password);
    if (!customer || !passwordOk || !canSignIn(customer)) {
      await gw.audit('identity.link_failure', { actor: 'anonymous', target: canonical.email, data: { method: 'google', ip: ctx.ip } });
      ctx.status = 401;
      renderLink(ctx, uid, canonical.email, GENERIC_LINK_FAILURE);
      return;
    }
    let linked: Customer | null;
    try {
      linked = await gw.store.customers.linkIdentity(customer.id, { issuer: pending.issuer, subject: pending.subject });
    } catch (err) {
      if (err instanceof StoreConflictError && err.code === 'identity_taken') {
        refuse(ctx, 'identity_taken', uid);
        return;
      }
      throw err;
    }
    if (!linked) throw new AppError('google_state_invalid', 400, EXPIRED);
    await gw.limits.reset('loginAccount', canonical.email);
    await gw.audit('identity.link', { actor: `customer:${linked.id}`, target: linked.id, data: { issuer: pending.issuer, subject: pending.subject, ip: ctx.ip } });
    await signIn(ctx, uid, secret, linked, ['google', 'pwd'], 'link');
  });

  return router;
}
