/**
 * oidc-provider with nothing of Gatehouse around it, as the floor the benchmarks compare
 * against (bench/floor.ts): its own in-memory adapter, the bench clients, a login form
 * that checks nothing and hashes nothing, every first-party scope granted without a
 * consent page. What this process spends per grant or per login is what the library and
 * Node's HTTP stack cost on this core before Gatehouse adds anything.
 *
 *   node bench/_bare-provider.ts <port>      prints "is listening on" when ready
 *
 * `/plain` answers 200 "ok" from the same process: Node's HTTP floor.
 */
import http from 'node:http';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { generateSigningJwks } from '../gateway/runtime/keys.ts';
import { BENCH_AUTOMATION, BENCH_CLIENT } from './_lib.ts';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const jwks = await generateSigningJwks();

const provider = new Provider(issuer, {
  clients: [
    { ...BENCH_CLIENT, id_token_signed_response_alg: (process.env.BENCH_ID_TOKEN_ALG ?? 'EdDSA') as 'EdDSA' },
    { client_id: BENCH_AUTOMATION.id, client_secret: BENCH_AUTOMATION.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin' },
  ],
  jwks: jwks as never,
  cookies: { keys: ['bench-cookie-key-0123456789abcdef0123456789'] },
  scopes: ['openid', 'email', 'offline_access', 'admin'],
  claims: { email: ['email', 'email_verified'] },
  features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
  pkce: { required: () => true },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, email: 'bench-admin@example.com', email_verified: true }) }),
  async loadExistingGrant(ctx: KoaContextWithOIDC) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    await grant.save();
    return grant;
  },
  async issueRefreshToken(_ctx, client, code) {
    return client.grantTypeAllowed('refresh_token') && code.scopes.has('openid');
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

const page = (uid: string) =>
  `<!doctype html><title>Sign in</title><form method="post" action="/interaction/${uid}/login"><input name="email"><input name="password" type="password"><button>Sign in</button></form>`;

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = req.url ?? '/';
  if (url === '/plain') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  const login = /^\/interaction\/([\w-]+)(\/login)?$/.exec(url);
  if (login) {
    try {
      const details = await provider.interactionDetails(req, res);
      if (!login[2]) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(details.uid));
        return;
      }
      for await (const _chunk of req); // the form (not checked: nothing is hashed here)
      await provider.interactionFinished(req, res, { login: { accountId: 'bench-account' } }, { mergeWithLastSubmission: false });
    } catch (error) {
      res.writeHead(400).end(String(error));
    }
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`bare oidc-provider is listening on ${issuer}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
