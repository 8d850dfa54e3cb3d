/**
 * A stand-in for Google in tests: a REAL OpenID Connect server (a second oidc-provider
 * instance) on a free loopback port, not a stub. It exposes authorization, token and
 * userinfo endpoints like Google's, requires PKCE, authenticates the client with
 * client_secret_post (what passport-oauth2 sends) and releases `email`,
 * `email_verified`, `hd` and `name` for `openid email profile` at its `/userinfo`.
 *
 * There is no login form: its own tiny interaction handler logs in whoever the test
 * configured with `setNextUser(...)` and approves consent. Every authorization request
 * is a fresh login (the stand-in's SSO session cookie is ignored), so the next flow
 * always signs in the configured user.
 *
 *   const google = await startFakeGoogle({ clientId, clientSecret, redirectUris: [cb] });
 *   google.setNextUser({ sub: '1001', email: 'ann@example.com', email_verified: true, name: 'Ann' });
 *   // gateway env: GOOGLE_ISSUER=google.issuer, GOOGLE_AUTHORIZATION_URL=google.authorizationUrl, ...
 *   await google.close();
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { Provider, type Configuration } from 'oidc-provider';
import { createMemoryAdapterFactory } from '../../adapters/oidc-memory.ts';
import { freePort } from './ports.ts';

export interface FakeGoogleUser {
  sub: string;
  email?: string;
  /** Deliberately loose: tests may send non-boolean values to see them refused. */
  email_verified?: unknown;
  name?: string;
  /** Google Workspace hosted domain. */
  hd?: string;
}

export interface FakeGoogle {
  issuer: string;
  authorizationUrl: string;
  tokenUrl: string;
  userinfoUrl: string;
  /** The user the next authorization request signs in. */
  setNextUser(user: FakeGoogleUser): void;
  /** Query parameters of every initial authorization request, oldest first. */
  readonly authorizationRequests: URLSearchParams[];
  /** How each userinfo call carried its access token, oldest first. */
  readonly userinfoRequests: Array<{ bearerHeader: boolean; tokenInQuery: boolean }>;
  /** Environment for the gateway under test (GOOGLE_*). */
  env(): Record<string, string>;
  close(): Promise<void>;
}

export interface FakeGoogleOptions {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

const SESSION_COOKIE = '_g_session';

/** The Cookie header without the stand-in's session cookies: every authorization is a fresh login. */
function withoutSession(cookie: string | undefined): string | undefined {
  if (!cookie) return cookie;
  return cookie
    .split(';')
    .map((c) => c.trim())
    .filter((c) => !c.startsWith(`${SESSION_COOKIE}=`) && !c.startsWith(`${SESSION_COOKIE}.sig=`))
    .join('; ');
}

export async function startFakeGoogle(options: FakeGoogleOptions): Promise<FakeGoogle> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const users = new Map<string, FakeGoogleUser>();
  let nextUser: FakeGoogleUser | null = null;
  const authorizationRequests: URLSearchParams[] = [];
  const userinfoRequests: FakeGoogle['userinfoRequests'] = [];

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), use: 'sig', alg: 'RS256', kid: 'fake-google' };

  const configuration: Configuration = {
    // An explicit adapter and lifetimes keep oidc-provider's quick-start warnings out of test output.
    adapter: createMemoryAdapterFactory() as unknown as Configuration['adapter'],
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [jwk] } as Configuration['jwks'],
    cookies: {
      keys: [randomBytes(32).toString('hex')],
      // Own names, so a test user agent's single cookie jar never mixes them with the gateway's.
      names: { session: SESSION_COOKIE, interaction: '_g_interaction', resume: '_g_interaction_resume' },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified', 'hd'], profile: ['name'] },
    scopes: ['openid', 'email', 'profile'],
    responseTypes: ['code'],
    pkce: { required: () => true },
    routes: { userinfo: '/userinfo', authorization: '/auth', token: '/token' },
    features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          const claims: Record<string, unknown> = { sub };
          for (const key of ['email', 'email_verified', 'name', 'hd'] as const) if (user[key] !== undefined) claims[key] = user[key];
          return claims as { sub: string };
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
  const provider = new Provider(issuer, configuration);
  const oidc = provider.callback();

  /** Auto-approves: login as the configured user, then consent to what was asked. */
  async function interact(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      if (!nextUser) throw new Error('fake google: call setNextUser() before starting a flow');
      users.set(nextUser.sub, { ...nextUser });
      await provider.interactionFinished(req, res, { login: { accountId: nextUser.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    const accountId = details.session?.accountId;
    const clientId = details.params.client_id;
    if (!accountId || typeof clientId !== 'string') throw new Error('fake google: consent without a session');
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId });
    if (!grant) throw new Error('fake google: grant vanished');
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname.startsWith('/interaction/')) {
      interact(req, res).catch((err: Error) => {
        res.statusCode = 500;
        res.setHeader('content-type', 'text/plain');
        res.end(`fake google interaction failed: ${err.message}`);
      });
      return;
    }
    if (url.pathname === '/auth') {
      authorizationRequests.push(url.searchParams);
      const cookie = withoutSession(req.headers.cookie);
      if (cookie === undefined || cookie === '') delete req.headers.cookie;
      else req.headers.cookie = cookie;
    }
    if (url.pathname === '/userinfo') {
      userinfoRequests.push({ bearerHeader: /^Bearer \S+$/.test(req.headers.authorization ?? ''), tokenInQuery: url.searchParams.has('access_token') });
    }
    void oidc(req, res);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  const urls = {
    issuer,
    authorizationUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    userinfoUrl: `${issuer}/userinfo`,
  };
  return {
    ...urls,
    authorizationRequests,
    userinfoRequests,
    setNextUser(user) {
      nextUser = { ...user };
    },
    env() {
      return {
        GOOGLE_CLIENT_ID: options.clientId,
        GOOGLE_CLIENT_SECRET: options.clientSecret,
        GOOGLE_ISSUER: urls.issuer,
        GOOGLE_AUTHORIZATION_URL: urls.authorizationUrl,
        GOOGLE_TOKEN_URL: urls.tokenUrl,
        GOOGLE_USERINFO_URL: urls.userinfoUrl,
      };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
