/**
 * passport-google-oauth20 driven by a small Koa adapter (no express, no sessions),
 * through its public API only: the strategy's options, the documented `userProfile`
 * extension point, the state-store contract and passport's per-request actions.
 *
 *   const strategy = createGoogleStrategy(config);
 *   const outcome = await runStrategy(strategy, adapterRequest(c, store), { state: { uid } });   // redirect | success | fail | error
 *
 * The round trip (the `state` handle sent to Google, the PKCE code_verifier, the
 * interaction uid) is a flow (gateway/oidc/flow-state.ts): kept server-side for 10
 * minutes, its id in a cookie on /federation/google, taken once by the callback.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { Strategy as GoogleStrategy, StrategyOptions, VerifyCallback as ProfileVerifyCallback } from 'passport-google-oauth20';
import { z } from 'zod';
import type { Store } from '../../../adapters/store.ts';
import type { Config } from '../../runtime/config.ts';
import { safeEqual } from '../../runtime/secrets.ts';
import { defineFlow } from '../../oidc/flow-state.ts';
import { parseGoogleClaims, type GoogleClaims } from './claims.ts';

export const GOOGLE_SCOPE = ['openid', 'email', 'profile'];
export const CALLBACK_PATH = '/federation/google/callback';
/** How long a Google round trip and the link page may take. */
export const FLOW_TTL_MS = 10 * 60 * 1000;
const USERINFO_TIMEOUT_MS = 10_000;
const ROUND_TRIP_PATH = '/federation/google';

/** The round trip to Google: the `state` handle sent along, the PKCE verifier, the interaction it belongs to. */
export const GoogleRoundTrip = defineFlow('google-round-trip', z.object({
  uid: z.string().regex(/^[\w-]{1,128}$/),
  handle: z.string().regex(/^[\w-]{43}$/),
  verifier: z.string().min(43).max(128),
}), FLOW_TTL_MS, 'gh.google.state');

/** What the strategy sees as `req`: the query, plus the Koa context for cookies and the store. */
export interface AdapterRequest {
  query: Record<string, unknown>;
  body?: undefined;
  headers: Record<string, unknown>;
  koa: Context;
  store: Pick<Store, 'tokens'>;
}

export function adapterRequest(c: Context, store: Pick<Store, 'tokens'>, query: Record<string, unknown> = { ...c.query }): AdapterRequest {
  return { query, body: undefined, headers: c.headers, koa: c, store };
}

/** Ends this browser's round trip, if any (a callback that cannot be used). */
export async function dropRoundTrip(c: Context, store: Pick<Store, 'tokens'>): Promise<void> {
  const id = GoogleRoundTrip.cookie.get(c);
  GoogleRoundTrip.cookie.clear(c, ROUND_TRIP_PATH);
  await GoogleRoundTrip.take(store, id);
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

/** The verify callback: with userProfile overridden it receives GoogleClaims (or null). */
type ClaimsVerify = (accessToken: string, refreshToken: string, params: unknown, claims: GoogleClaims | null, done: ProfileVerifyCallback) => void;

/**
 * passport-google-oauth20's strategy with its documented extension point, `userProfile`,
 * overridden: userinfo is fetched with the access token in the Authorization header
 * (never in the URL, where the library's default GET puts it) and parsed with our schema,
 * so the verify callback receives GoogleClaims (or null) and no private field of the
 * library is read or written. The library (with passport-oauth2 and oauth) is loaded
 * here: only a gateway with Google configured loads it, at its start (the routes wait for it).
 */
export async function createGoogleStrategy(config: Config): Promise<GoogleStrategy> {
  const { Strategy } = await import('passport-google-oauth20');
  class GoogleUserinfoStrategy extends Strategy {
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
