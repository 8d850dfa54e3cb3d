/**
 * The sample portal: a tiny customer portal, an OpenID Connect relying party written the
 * way a real one would be (openid-client, authorization code + PKCE, state and nonce,
 * the issuer's public URL for every call), registered as the generated demo client.
 * A newcomer signs up and signs in as a customer here and sees what a portal receives:
 * the ID token's claims and the userinfo answer. Development only (config.samplePortal).
 *
 *   GET  /sample-portal/           signed out: "Sign in or create an account"; signed in: the claims
 *   GET  /sample-portal/login      starts the authorization request
 *   GET  /sample-portal/callback   the demo client's redirect URI: code -> tokens -> userinfo
 *   POST /sample-portal/logout     forgets the session here, then RP-initiated logout at Gatehouse
 *
 * Its own state stays in this process: the transaction (state, nonce, PKCE verifier) in a
 * signed HttpOnly cookie scoped to /sample-portal, the signed-in session in a bounded map
 * keyed by a random id in another such cookie. A restart signs the portal out; that is all.
 */
import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type * as OidcClient from 'openid-client';
import { z } from 'zod';
import type { GatewayContext } from '../runtime/context.ts';
import type { DemoClientUris } from '../oidc/clients.ts';
import { portalSignupOpen } from '../../policies/index.ts';
import { formBody } from '../http/body.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';

export const SAMPLE_PORTAL_PATH = '/sample-portal';

/**
 * openid-client (and its oauth4webapi), loaded by the first sample-portal page that signs
 * in or out: a development page most processes never serve, so a start does not load it.
 */
let openidClient: Promise<typeof OidcClient> | null = null;
const loadOpenidClient = () => (openidClient ??= import('openid-client'));
const SCOPE = 'openid email profile company services portal';
const TX_COOKIE = 'gh.sample.tx';
const SESSION_COOKIE = 'gh.sample';
/** Long enough to read the verification mail and come back through "Sign in and continue". */
const TX_TTL_MS = 60 * 60 * 1000;
const SESSION_TTL_MS = 60 * 60 * 1000;
const MAX_SESSIONS = 1000;

/** The demo client's URIs when the sample portal runs (gateway/app.ts passes them to loadClients). */
export function samplePortalClientUris(issuer: string): DemoClientUris {
  return { redirectUri: `${issuer}${SAMPLE_PORTAL_PATH}/callback`, postLogoutRedirectUri: `${issuer}${SAMPLE_PORTAL_PATH}/` };
}

const txSchema = z.object({ state: z.string(), nonce: z.string(), verifier: z.string() });

interface Session {
  idTokenClaims: Record<string, unknown>;
  userinfo: Record<string, unknown>;
  idToken: string;
  expiresAt: number;
}

export function samplePortalRoutes(
  ctx: Pick<GatewayContext, 'config' | 'views' | 'policy' | 'logger'>,
  client: { clientId: string; clientSecret: string },
  links: { console: string; mailbox: string | null },
): Router {
  const { config, views } = ctx;
  const router = new Router({ prefix: SAMPLE_PORTAL_PATH });
  const uris = samplePortalClientUris(config.ISSUER);
  const csrf = requireCsrf(config.ISSUER);
  const sessions = new Map<string, Session>();
  const cookie = (c: Context, maxAge: number) => ({ signed: true, httpOnly: true, sameSite: 'lax' as const, path: SAMPLE_PORTAL_PATH, secure: c.secure, maxAge, overwrite: true });

  // Discovered on first use (the gateway is not listening yet when routes are built), like
  // any portal would: over HTTP at the issuer's public URL.
  let discovered: Promise<OidcClient.Configuration> | null = null;
  function rp(): Promise<OidcClient.Configuration> {
    discovered ??= loadOpenidClient()
      .then((oidc) => oidc.discovery(new URL(config.ISSUER), client.clientId, client.clientSecret, undefined, config.ISSUER.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : {}))
      .catch((err: unknown) => {
        discovered = null;
        throw err;
      });
    return discovered;
  }

  /** The discovered configuration, or null after rendering why not (ISSUER unreachable from here). */
  async function rpOrExplain(c: Context): Promise<OidcClient.Configuration | null> {
    try {
      return await rp();
    } catch (err) {
      ctx.logger.warn({ err }, 'sample portal: discovery failed');
      render(c, { error: `The sample portal cannot reach Gatehouse at ${config.ISSUER} (the ISSUER setting) from this machine.` }, 503);
      return null;
    }
  }

  function currentSession(c: Context): Session | null {
    const id = c.cookies.get(SESSION_COOKIE, { signed: true });
    const session = id ? sessions.get(id) : undefined;
    if (!id || !session) return null;
    if (session.expiresAt < Date.now()) {
      sessions.delete(id);
      return null;
    }
    return session;
  }

  function render(c: Context, data: { error?: string } = {}, status = 200): void {
    const session = currentSession(c);
    c.status = status;
    c.type = 'html';
    c.body = views.render('sample-portal', {
      session,
      idTokenClaims: session ? JSON.stringify(session.idTokenClaims, null, 2) : null,
      userinfo: session ? JSON.stringify(session.userinfo, null, 2) : null,
      signupOpen: portalSignupOpen(ctx.policy.current()),
      clientId: client.clientId,
      links,
      csrf: csrfToken(c),
      error: data.error ?? null,
    });
  }

  router.get('/', (c) => render(c));

  router.get('/login', async (c) => {
    const oidc = await loadOpenidClient();
    const tx = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
    const configuration = await rpOrExplain(c);
    if (!configuration) return;
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: uris.redirectUri,
      scope: SCOPE,
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(tx.verifier),
      code_challenge_method: 'S256',
    });
    c.cookies.set(TX_COOKIE, Buffer.from(JSON.stringify(tx)).toString('base64url'), cookie(c, TX_TTL_MS));
    c.redirect(url.toString());
  });

  router.get('/callback', async (c) => {
    const oidc = await loadOpenidClient();
    const raw = c.cookies.get(TX_COOKIE, { signed: true });
    let tx: z.infer<typeof txSchema> | null = null;
    try {
      const parsed = raw ? txSchema.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))) : null;
      tx = parsed?.success ? parsed.data : null;
    } catch {
      tx = null;
    }
    if (!tx) return render(c, { error: 'This sign-in did not start here, or it took longer than an hour. Start again.' }, 400);
    const configuration = await rpOrExplain(c);
    if (!configuration) return;
    const current = new URL(uris.redirectUri);
    current.search = c.querystring;
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(configuration, current, { pkceCodeVerifier: tx.verifier, expectedState: tx.state, expectedNonce: tx.nonce, idTokenExpected: true });
    } catch (err) {
      // Refused or cancelled at Gatehouse, an older sign-in's state, a code used twice: the
      // portal says what happened, as a portal should; anything else is a server error.
      c.cookies.set(TX_COOKIE, null, cookie(c, 0));
      if (err instanceof oidc.AuthorizationResponseError) {
        return render(c, { error: `Gatehouse did not sign you in (${err.error}${err.error_description ? `: ${err.error_description}` : ''}).` }, 400);
      }
      if (err instanceof oidc.ResponseBodyError || err instanceof oidc.ClientError) {
        return render(c, { error: `This sign-in could not be completed (${err.message}). Start again.` }, 400);
      }
      throw err;
    }
    c.cookies.set(TX_COOKIE, null, cookie(c, 0));
    const idTokenClaims = { ...tokens.claims()! } as Record<string, unknown>;
    const userinfo = { ...(await oidc.fetchUserInfo(configuration, tokens.access_token, String(idTokenClaims.sub))) } as Record<string, unknown>;
    const id = randomBytes(24).toString('base64url');
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    sessions.set(id, { idTokenClaims, userinfo, idToken: tokens.id_token!, expiresAt: Date.now() + SESSION_TTL_MS });
    c.cookies.set(SESSION_COOKIE, id, cookie(c, SESSION_TTL_MS));
    c.redirect(`${SAMPLE_PORTAL_PATH}/`);
  });

  router.post('/logout', formBody, csrf, async (c) => {
    const oidc = await loadOpenidClient();
    const session = currentSession(c);
    const id = c.cookies.get(SESSION_COOKIE, { signed: true });
    if (id) sessions.delete(id);
    c.cookies.set(SESSION_COOKIE, null, cookie(c, 0));
    c.status = 303;
    if (!session) return c.redirect(`${SAMPLE_PORTAL_PATH}/`);
    const configuration = await rpOrExplain(c);
    if (!configuration) return;
    c.status = 303;
    // Ends the Gatehouse session too (its "Sign out?" page), then back here.
    c.redirect(oidc.buildEndSessionUrl(configuration, { id_token_hint: session.idToken, post_logout_redirect_uri: uris.postLogoutRedirectUri }).toString());
  });

  return router;
}
