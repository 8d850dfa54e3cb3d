/**
 * Composition root: builds every part from config and injected clients, and wires the
 * HTTP stack as one visible list. Nothing here opens a connection at import time, and
 * nothing imports this module but the entry points (main.ts) and tests: the shapes route
 * modules need live in gateway/runtime/context.ts.
 *
 *   const gw = await startGateway(loadConfig(process.env), { logger });
 *   ...; await gw.close();
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Context } from 'koa';
import type Router from '@koa/router';
import type { MailIntake } from '../adapters/mail-intake.ts';
import { readTrustedAuthResults, verifyMessage } from '../adapters/mail-auth.ts';
import { isSqliteStore } from '../adapters/store-sqlite.ts';
import {
  addressKey, createLogger, createPasswordHasher, createPolicyRuntime, createRateLimits, defaultLimitSpecs, ensureBootstrapAdmin, loadKeyMaterial,
  loadPlugins, oidcAdapterFor, openRedis, openStore, startBackgroundJobs, type BackgroundJobs, type BootstrapAdmin, type Config, type GatewayContext, type GatewayDeps,
} from './runtime/index.ts';
import {
  countRequests, createMetrics, createViews, currentPresentation, errorHandler, issuerHostRedirect, opsRoutes, pageContextMiddleware, requestId, routeGate, securityHeaders,
  startMetricsServer, type Metrics,
} from './http/index.ts';
import { languageRoutes } from './http/i18n.ts';
import {
  createBackchannel, createClientRegistry, createFindAccount, createProvider, endSessionWithHint, interactionRoutes, KEYCLOAK_ROUTES, keycloakRealms,
  loadClientSetup, loadResourceServers, realmIssuer, realmPath, reservedClientIds, secondFactorRoutes, serviceInteractionRoutes, trackAccountSessions,
} from './oidc/index.ts';
import {
  adLoginOptions, createRegistration, createSignupMail, directoryFromConfig, emailSignupRoutes, googleLoginOption, googleSignupRoutes,
  guardIntakeSender, identityLinkRoutes, portalRegisterLink, recordIntakeRejection, registerEmailSender, serviceOfClient, setPasswordRoutes, signupAdRoutes, signupPortalRoutes, visitorRoutes,
} from './signup/index.ts';
import { adminApiRoutes, adminConsoleRoutes } from './admin/index.ts';
import { portalDiscovery } from './portal/settings.ts';
import { portalRoutes } from './portal/index.ts';
import { firstRunRoutes, samplePortalClientUris } from './dev/index.ts';

export type { GatewayContext, GatewayDeps } from './runtime/context.ts';

export interface Gateway {
  context: GatewayContext;
  app: Koa;
  server: http.Server;
  url: string;
  bootstrapAdmin: BootstrapAdmin;
  /** The built-in SMTP intake, when SMTP_INTAKE_PORT is set. */
  intake: MailIntake | null;
  /** The Prometheus endpoint's own listener (METRICS_PORT), never the public port; null when off. */
  metricsUrl: string | null;
  close(): Promise<void>;
}

export async function buildGateway(config: Config, deps: GatewayDeps = {}): Promise<{ context: GatewayContext; app: Koa; bootstrapAdmin: BootstrapAdmin; metrics: Metrics | null }> {
  const logger = deps.logger ?? createLogger(config.LOG_LEVEL);
  const store = deps.store ?? (await openStore(config, logger));
  await store.migrate();
  const redis = deps.redis !== undefined ? deps.redis : await openRedis(config, logger);
  const keys = await loadKeyMaterial(config, logger);
  const hasher = createPasswordHasher({ memoryKiB: config.ARGON2_MEMORY_KIB, timeCost: config.ARGON2_TIME_COST, parallelism: config.ARGON2_PARALLELISM });
  const limits = createRateLimits(defaultLimitSpecs(config), redis);
  // With the sample portal on (development), the demo client is the sample portal.
  const clientSetup = loadClientSetup(config, config.samplePortal ? samplePortalClientUris(config.ISSUER) : undefined);
  // Portal clients live in the store (CLIENTS_FILE seeds them), the same copy in every process.
  const clients = await createClientRegistry({ store, redis, logger, setup: clientSetup, reserved: reservedClientIds(config) });
  // Pages and mail show the portal they are for (gateway/http/page-context.ts).
  const views = createViews({ brand: (clientId) => clients.brandOf(clientId), issuer: config.ISSUER });
  const policy = await createPolicyRuntime({
    store,
    redis,
    logger,
    plugins: await loadPlugins(config.policyPlugins),
    pluginTimeoutMs: config.POLICY_PLUGIN_TIMEOUT_MS,
  });

  // One adapter, key set, client list and account lookup for both layouts (gateway/oidc/provider.ts).
  const resources = loadResourceServers(config.RESOURCE_SERVERS_FILE, keys.signingAlgs);
  const realm = { name: config.KEYCLOAK_REALM, issuer: realmIssuer(config.ISSUER, config.KEYCLOAK_REALM) };
  const findAccount = createFindAccount(store, () => ({
    companyName: (id) => policy.current().companiesById.get(id)?.name ?? null,
    companyRequestsVisible: () => policy.current().policy.portal.companyRequestsVisible,
  }));
  const common = {
    adapter: oidcAdapterFor(store, redis),
    clients: clientSetup.staticClients,
    portals: clients,
    findAccount,
    jwks: keys.jwks,
    signing: { algs: keys.signingAlgs, idTokenDefault: config.ID_TOKEN_SIGNING_ALG },
    cookieKeys: keys.cookieKeys,
    views,
    logger,
    trustProxyHops: config.TRUST_PROXY,
    resources,
    serviceAccess: { store, policy },
    discoveryExtras: () => portalDiscovery(policy.current().policy, config.ISSUER),
  };
  const provider = createProvider({ ...common, issuer: config.ISSUER, layout: { kind: 'root' } });
  const realmProvider = createProvider({ ...common, issuer: realm.issuer, layout: { kind: 'keycloak', realm: realm.name } });

  const backchannel = createBackchannel({ store, providers: [provider, realmProvider], logger });
  const mailJobs = startBackgroundJobs(config, store, logger);
  const jobs: BackgroundJobs = {
    outbox: mailJobs.outbox,
    stop: async () => {
      await Promise.all([mailJobs.stop(), backchannel.stop()]);
    },
  };
  // Mail is from the portal the request is for (its name as the sender, replies to its support address).
  const sendMail: GatewayContext['sendMail'] = async (message) => {
    const brand = clients.brandOf(currentPresentation().clientId);
    const headers: Record<string, string> = { 'Auto-Submitted': 'auto-generated', ...(brand.supportEmail ? { 'Reply-To': brand.supportEmail } : {}) };
    await store.outbox.enqueue({ ...message, headers, fromName: brand.name });
    jobs.outbox?.kick();
  };
  const registration = createRegistration({ store, policy, logger, mail: createSignupMail({ store, views, issuer: config.ISSUER, sendMail, verifyTtlMs: config.VERIFY_LINK_TTL_S * 1000 }) });

  const context: GatewayContext = {
    config, logger, store, redis, provider, hasher, limits, views, keys, clients, policy, registration, jobs, sendMail,
    realms: [{ name: realm.name, provider: realmProvider, userinfoAudience: resources.realmUserinfo(realm.issuer) }],
    findAccount,
    sessions: trackAccountSessions([provider, realmProvider], redis, logger, backchannel, isSqliteStore(store) ? store.file : null),
    async audit(action, event) {
      await store.audit.append({ at: new Date(), action, ...event });
    },
  };

  const bootstrapAdmin = await ensureBootstrapAdmin(config, store, hasher);
  // Prometheus only when its port is on: no per-request counting for nobody.
  const metrics = config.METRICS_PORT !== undefined ? await createMetrics() : null;
  const app = createApp(context, metrics);
  return { context, app, bootstrapAdmin, metrics };
}

function createApp(ctx: GatewayContext, metrics: Metrics | null): Koa {
  const { config, logger, provider, views } = ctx;
  // Behind N trusted proxies the client address is the N-th X-Forwarded-For entry from the
  // right (what the nearest trusted proxy saw); anything a client wrote left of it is ignored.
  const app = new Koa({ proxy: config.TRUST_PROXY > 0, maxIpsCount: config.TRUST_PROXY, keys: ctx.keys.cookieKeys });
  const directory = directoryFromConfig(config, logger);

  // The login page: the password form, then these ways in, in this order.
  const interactions = interactionRoutes({
    provider,
    store: ctx.store,
    hasher: ctx.hasher,
    limits: ctx.limits,
    views,
    issuer: config.ISSUER,
    audit: (action, e) => ctx.audit(action, e),
    alternatives: [googleLoginOption(config), ...adLoginOptions(directory, ctx.policy)].filter((o) => o !== null),
    registerHref: portalRegisterLink(ctx.policy, serviceOfClient(ctx.clients)),
  });

  // Route modules after the interaction routes, in this order; each owns its paths.
  const routers: Router[] = [
    interactions,
    secondFactorRoutes(ctx),
    serviceInteractionRoutes(ctx),
    emailSignupRoutes(ctx),
    setPasswordRoutes(ctx),
    signupPortalRoutes(ctx),
    googleSignupRoutes(ctx),
    signupAdRoutes(ctx, directory),
    identityLinkRoutes(ctx),
    visitorRoutes(ctx),
    adminApiRoutes(ctx),
    adminConsoleRoutes(ctx),
    portalRoutes(ctx),
    languageRoutes(),
    ...firstRunRoutes(ctx),
  ];

  const oidc = provider.callback();
  const ops = opsRoutes({ store: ctx.store, redis: ctx.redis, policy: ctx.policy });

  // The HTTP stack, outermost first.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- router middleware types differ from Koa's by design
  const stack: Koa.Middleware<any, any>[] = [
    requestId,
    ...(metrics ? [countRequests(metrics.requests)] : []),
    // Which portal and language the pages of this request are for (error pages included).
    pageContextMiddleware,
    errorHandler(logger, views),
    securityHeaders,
    // Browser pages that start a flow of their own, on the issuer's host only (no invalid_state
    // for a console opened at 127.0.0.1 while ISSUER is localhost); never the OIDC endpoints,
    // the admin API or the interaction pages (see the module).
    issuerHostRedirect(config.ISSUER, { pages: ['/', '/admin', '/sample-portal', '/dev/mailbox'], except: ['/admin/api'] }),
    ops.routes(),
    ops.allowedMethods(),
    // Each router's routes() and allowedMethods(), in order, skipped for paths none of them owns (/token, /auth...).
    routeGate(routers),
    // Logout with a valid id_token_hint, in both layouts, before oidc-provider asks.
    endSessionWithHint({
      routes: [
        { path: '/session/end', provider, post: config.ISSUER.startsWith('https://') },
        ...ctx.realms.map((r) => ({ path: `${realmPath(r.name)}${KEYCLOAK_ROUTES.end_session}`, provider: r.provider, post: config.ISSUER.startsWith('https://') })),
      ],
      sessions: ctx.sessions,
      views,
    }),
    // The Keycloak layout: /realms/{realm}/... (its provider, userinfo, keycloak-js iframes).
    keycloakRealms({ realms: ctx.realms, jwks: ctx.keys.jwks, cookieKeys: ctx.keys.cookieKeys, findAccount: ctx.findAccount, sessions: ctx.sessions, webOrigins: () => ctx.clients.webOrigins() }),
    // Everything else is oidc-provider's (discovery, /auth, /token, /me, /jwks, ...).
    async function oidcProvider(c: Context) {
      c.respond = false;
      await oidc(c.req, c.res);
    },
  ];
  for (const mw of stack) app.use(mw);
  return app;
}

/** Build, listen and return a handle whose close() drains connections and closes clients. */
export async function startGateway(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const { context, app, bootstrapAdmin, metrics } = await buildGateway(config, deps);
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 5000;
  let intake: MailIntake | null = null;
  let metricsServer: http.Server | null = null;
  /** Stops what has started so far and closes the clients this start opened. */
  const release = async () => {
    await intake?.stop();
    metricsServer?.closeAllConnections();
    await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 5000).unref();
    });
    await context.jobs.stop();
    await context.policy.close();
    await context.clients.close();
    if (!deps.redis && context.redis) await context.redis.quit().catch(() => context.redis?.disconnect());
    if (!deps.store) await context.store.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => resolve());
    });
    intake = await startIntake(config, deps, context);
    metricsServer = metrics && config.METRICS_PORT !== undefined ? await startMetricsServer(metrics, { port: config.METRICS_PORT, host: config.METRICS_HOST }) : null;
  } catch (error) {
    // A port in use (or any failed listener) must not leave timers, clients and the store
    // open behind a start that threw: the process could then never exit on its own.
    await release().catch(() => undefined);
    throw error;
  }
  const address = server.address() as AddressInfo;
  const hostUrl = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const url = hostUrl(config.HOST, address.port);
  const metricsUrl = metricsServer ? hostUrl(config.METRICS_HOST, (metricsServer.address() as AddressInfo).port) : null;
  let closing: Promise<void> | undefined;
  return {
    context,
    app,
    server,
    url,
    bootstrapAdmin,
    intake,
    metricsUrl,
    close() {
      closing ??= release();
      return closing;
    },
  };
}

/** The SMTP intake when SMTP_INTAKE_PORT is set (null otherwise). */
async function startIntake(config: Config, deps: GatewayDeps, context: GatewayContext) {
  return config.SMTP_INTAKE_PORT !== undefined
    ? // Loaded only when enabled: the SMTP server and MIME parser are a tenth of the start-up CPU.
      await (await import('../adapters/mail-intake.ts')).startMailIntake({
        port: config.SMTP_INTAKE_PORT,
        host: config.HOST,
        maxMessageBytes: 10 * 1024 * 1024,
        logger: context.logger,
        maxMessagesPerConnection: config.MAIL_INTAKE_MAX_MESSAGES_PER_CONNECTION,
        maxRecipientsPerConnection: config.MAIL_INTAKE_MAX_RECIPIENTS_PER_CONNECTION,
        // The From address must be the sender's: checked here, or a trusted relay's verdict.
        authenticate: config.MAIL_INTAKE_AUTH === 'relay'
          ? async (_raw, c) => readTrustedAuthResults(c.authenticationResults, config.MAIL_INTAKE_AUTHSERV_ID!, c.sender.slice(c.sender.lastIndexOf('@') + 1))
          : (raw, c) => verifyMessage(raw, { ip: c.ip, helo: c.helo, mailFrom: c.mailFrom, ...(deps.mailResolver ? { resolver: deps.mailResolver } : {}) }),
        onRejected: (r) => recordIntakeRejection(context, { email: r.email, via: 'smtp-intake', ip: r.ip, ...(r.messageId ? { messageId: r.messageId } : {}) }, r.reason, r.domain),
        onSender: async (sender, c) => {
          const gate = await guardIntakeSender(context, { email: sender.email, recipients: c.recipients, auth: null, via: 'smtp-intake', ip: c.ip, ...(sender.messageId ? { messageId: sender.messageId } : {}) });
          if (!gate.ok) return;
          await context.limits.hit('intakeAddress', addressKey(sender.email));
          await registerEmailSender(context, sender, 'smtp-intake');
        },
      })
    : null;
}
