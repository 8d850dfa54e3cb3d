/**
 * Composition root: builds every part from config and injected clients, and wires the
 * HTTP stack as one visible list. Nothing here opens a connection at import time.
 *
 *   const gw = await startGateway(loadConfig(process.env), { logger });
 *   ...; await gw.close();
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Context, type Next } from 'koa';
import Router from '@koa/router';
import { Redis } from 'ioredis';
import type { Provider } from 'oidc-provider';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import type { Store } from '../adapters/store.ts';
import { createMemoryStore } from '../adapters/store-memory.ts';
import { createMemoryAdapterFactory } from '../adapters/oidc-memory.ts';
import { createRedisAdapterFactory } from '../adapters/oidc-redis.ts';
import type { Config } from './runtime/config.ts';
import { createLogger, type Logger } from './runtime/logger.ts';
import { loadKeyMaterial, type KeyMaterial } from './runtime/keys.ts';
import { createPasswordHasher, type PasswordHasher } from './runtime/passwords.ts';
import { addressKey, createRateLimits, defaultLimitSpecs, type RateLimits } from './runtime/ratelimit.ts';
import { createViews, VIEWS_DIR, type Views } from './http/views.ts';
import { createProvider } from './oidc/provider.ts';
import { createFindAccount } from './oidc/accounts.ts';
import { loadClients, type ClientSetup } from './oidc/clients.ts';
import { interactionRoutes, type LoginAlternative } from './oidc/interactions.ts';
import { ensureBootstrapAdmin, type BootstrapAdmin } from './runtime/bootstrap.ts';
import { createPolicyRuntime, loadPlugins, type PolicyRuntime } from './runtime/policy-runtime.ts';
import { createRegistration, type Registration } from './signup/registration.ts';
import { routeModules } from './routes.ts';
import { trackAccountSessions, type AccountSessions } from './oidc/account-sessions.ts';
import { createMailer, startOutboxWorker, type OutboxWorker } from '../adapters/mailer.ts';
import { startSweeper } from '../adapters/store-sweeper.ts';
import { startMailIntake, type MailIntake } from '../adapters/mail-intake.ts';
import { registerEmailSender } from './signup/email.ts';
import { errorHandler } from './http/error-handler.ts';
import { securityHeaders } from './http/security.ts';

/** Everything a route module may need; built once per gateway. */
export interface GatewayContext {
  config: Config;
  logger: Logger;
  store: Store;
  redis: Redis | null;
  provider: Provider;
  hasher: PasswordHasher;
  limits: RateLimits;
  views: Views;
  keys: KeyMaterial;
  clients: ClientSetup;
  jobs: BackgroundJobs;
  /** Ends every grant, token and session of an account (disable, delete, password reset). */
  sessions: AccountSessions;
  /** What the login page offers besides the password form; sign-up modules add to it when mounted. */
  loginPage: {
    alternatives: Array<(uid: string) => Promise<LoginAlternative | null>>;
    registerLink: ((uid: string) => Promise<string | null>) | null;
  };
  policy: PolicyRuntime;
  registration: Registration;
  /** Queues a message in the durable outbox (sent by the outbox worker, retried, never lost). */
  sendMail(message: { to: string; subject: string; text: string; html?: string }): Promise<void>;
  audit(action: string, event: { actor: string; target?: string; before?: unknown; after?: unknown; data?: Record<string, unknown> }): Promise<void>;
}

export interface Gateway {
  context: GatewayContext;
  app: Koa;
  server: http.Server;
  url: string;
  bootstrapAdmin: BootstrapAdmin;
  /** The built-in SMTP intake, when SMTP_INTAKE_PORT is set. */
  intake: MailIntake | null;
  close(): Promise<void>;
}

export interface GatewayDeps {
  logger?: Logger;
  /** Inject a store (tests, migrate); default from MONGODB_URI or the in-memory store. */
  store?: Store;
  /** Inject a Redis client; default from REDIS_URL or none. */
  redis?: Redis | null;
}

export async function openStore(config: Config, logger: Logger): Promise<Store> {
  if (!config.MONGODB_URI) {
    logger.warn('MONGODB_URI is not set: using the embedded in-memory store. DATA IS NOT DURABLE: everything is lost when this process stops.');
    return createMemoryStore();
  }
  const { createMongoStore } = await import('../adapters/store-mongo.ts');
  return createMongoStore({
    uri: config.MONGODB_URI,
    dbName: config.MONGODB_DB,
    client: {
      maxPoolSize: config.MONGODB_POOL_SIZE,
      serverSelectionTimeoutMS: config.MONGODB_TIMEOUT_MS,
      connectTimeoutMS: config.MONGODB_TIMEOUT_MS,
      socketTimeoutMS: Math.max(config.MONGODB_TIMEOUT_MS * 2, 10000),
    },
  });
}

export function openRedis(config: Config, logger: Logger): Redis | null {
  if (!config.REDIS_URL) {
    logger.warn('REDIS_URL is not set: OIDC sessions, tokens and rate limits live in this process only (single process, not durable).');
    return null;
  }
  // Fail closed fast while Redis is down: commands issued while disconnected wait in the
  // offline queue, which ioredis flushes with an error every (maxRetriesPerRequest + 1)
  // reconnect attempts; its default reconnect delay grows to 2 s, so a request could wait
  // ~6 s. Reconnecting at least every 500 ms bounds that wait to ~1.5 s and brings the
  // gateway back within a second of Redis returning; commandTimeout bounds the rest
  // (every command here is O(1), a healthy Redis answers in well under a millisecond).
  const redis = new Redis(config.REDIS_URL, {
    lazyConnect: false,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    commandTimeout: 2000,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 500),
  });
  redis.on('error', (err) => logger.warn({ err: { message: err.message } }, 'redis error'));
  return redis;
}

/** Background jobs of one gateway process: the outbox sender and the expired-token sweeper. */
export interface BackgroundJobs {
  outbox: OutboxWorker | null;
  stop(): Promise<void>;
}

function startBackgroundJobs(config: Config, store: Store, logger: Logger): BackgroundJobs {
  let outbox: OutboxWorker | null = null;
  if (config.SMTP_URL) {
    const mailer = createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, logger });
    outbox = startOutboxWorker({ outbox: store.outbox, mailer, logger, intervalMs: 500 });
  } else {
    logger.warn('SMTP_URL is not set: outgoing mail (verification links, invites) stays queued in the outbox.');
  }
  const stopSweeper = startSweeper(store, 60_000, logger);
  return {
    outbox,
    async stop() {
      await Promise.all([outbox?.stop(), stopSweeper()]);
    },
  };
}

export async function buildGateway(config: Config, deps: GatewayDeps = {}): Promise<{ context: GatewayContext; app: Koa; bootstrapAdmin: BootstrapAdmin }> {
  const logger = deps.logger ?? createLogger(config.LOG_LEVEL);
  const store = deps.store ?? (await openStore(config, logger));
  await store.migrate();
  const redis = deps.redis !== undefined ? deps.redis : openRedis(config, logger);
  const keys = await loadKeyMaterial(config, logger);
  const hasher = createPasswordHasher({ memoryKiB: config.ARGON2_MEMORY_KIB, timeCost: config.ARGON2_TIME_COST, parallelism: config.ARGON2_PARALLELISM });
  const limits = createRateLimits(defaultLimitSpecs(config), redis);
  const views = createViews();
  const clients = loadClients(config);

  const provider = createProvider({
    issuer: config.ISSUER,
    adapter: redis ? createRedisAdapterFactory(redis) : createMemoryAdapterFactory(),
    clients: clients.clients,
    findAccount: createFindAccount(store, () => ({
      companyName: (id) => context.policy.current().companiesById.get(id)?.name ?? null,
      companyRequestsVisible: () => context.policy.current().policy.portal.companyRequestsVisible,
    })),
    jwks: keys.jwks,
    cookieKeys: keys.cookieKeys,
    views,
    logger,
    trustProxy: config.TRUST_PROXY,
  });

  const policy = await createPolicyRuntime({
    store,
    redis,
    logger,
    plugins: await loadPlugins(config.policyPlugins),
    pluginTimeoutMs: config.POLICY_PLUGIN_TIMEOUT_MS,
  });
  const registration = createRegistration({ store, policy, logger });
  const jobs = startBackgroundJobs(config, store, logger);

  const context: GatewayContext = {
    config, logger, store, redis, provider, hasher, limits, views, keys, clients, policy, registration, jobs,
    sessions: trackAccountSessions(provider, redis, logger),
    loginPage: { alternatives: [], registerLink: null },
    async sendMail(message) {
      await store.outbox.enqueue({ ...message, headers: { 'Auto-Submitted': 'auto-generated' } });
      jobs.outbox?.kick();
    },
    async audit(action, event) {
      await store.audit.append({ at: new Date(), action, ...event });
    },
  };

  const bootstrapAdmin = await ensureBootstrapAdmin(config, store, hasher);
  const app = createApp(context);
  return { context, app, bootstrapAdmin };
}

function createApp(ctx: GatewayContext): Koa {
  const { config, logger, provider, views } = ctx;
  const app = new Koa({ proxy: config.TRUST_PROXY, keys: ctx.keys.cookieKeys });

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const requests = new Counter({ name: 'gatehouse_http_requests_total', help: 'HTTP requests by status class', labelNames: ['status'], registers: [metrics] });

  const router = new Router();
  router.get('/healthz', (c) => {
    c.body = { status: 'ok' };
  });
  router.get('/readyz', async (c) => {
    const checks = await readiness(ctx);
    const ready = Object.values(checks).every((v) => v === 'up');
    c.status = ready ? 200 : 503;
    c.body = { status: ready ? 'ready' : 'not_ready', checks };
  });
  router.get('/metrics', async (c) => {
    c.type = metrics.contentType;
    c.body = await metrics.metrics();
  });
  router.get('/static/app.css', async (c) => {
    c.type = 'text/css';
    c.set('Cache-Control', 'public, max-age=3600');
    c.body = await readFile(new URL('static/app.css', `file://${VIEWS_DIR}`));
  });

  const interactions = interactionRoutes({
    provider,
    store: ctx.store,
    hasher: ctx.hasher,
    limits: ctx.limits,
    views,
    issuer: config.ISSUER,
    audit: (action, e) => ctx.audit(action, e),
    alternatives: async (uid) => (await Promise.all(ctx.loginPage.alternatives.map((a) => a(uid)))).filter((a): a is LoginAlternative => a !== null),
    registerHref: async (uid) => (ctx.loginPage.registerLink ? ctx.loginPage.registerLink(uid) : null),
  });

  const oidc = provider.callback();

  // The HTTP stack, outermost first.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- router middleware types differ from Koa's by design
  const stack: Koa.Middleware<any, any>[] = [
    requestId,
    countRequests(requests),
    errorHandler(logger, views),
    securityHeaders,
    router.routes(),
    router.allowedMethods(),
    interactions.routes(),
    interactions.allowedMethods(),
    ...routeModules(ctx).flatMap((r) => [r.routes(), r.allowedMethods()]),
    // Everything else is oidc-provider's (discovery, /auth, /token, /me, /jwks, ...).
    async function oidcProvider(c: Context) {
      c.respond = false;
      await oidc(c.req, c.res);
    },
  ];
  for (const mw of stack) app.use(mw);
  return app;
}

async function requestId(ctx: Context, next: Next): Promise<void> {
  const incoming = ctx.get('x-request-id');
  ctx.state.requestId = /^[\w-]{8,64}$/.test(incoming) ? incoming : randomUUID();
  ctx.set('X-Request-Id', ctx.state.requestId);
  await next();
}

function countRequests(counter: Counter<'status'>) {
  return async function count(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } finally {
      ctx.res.once('finish', () => counter.inc({ status: `${Math.floor(ctx.res.statusCode / 100)}xx` }));
    }
  };
}

export async function readiness(ctx: Pick<GatewayContext, 'store' | 'redis'>): Promise<Record<string, 'up' | 'down'>> {
  const withTimeout = <T>(p: Promise<T>, ms: number) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);
  const checks: Record<string, 'up' | 'down'> = {};
  checks[ctx.store.kind] = await withTimeout(ctx.store.ping(), 2000).then(() => 'up' as const, () => 'down' as const);
  if (ctx.redis) checks.redis = await withTimeout(ctx.redis.ping(), 2000).then(() => 'up' as const, () => 'down' as const);
  return checks;
}

/** Build, listen and return a handle whose close() drains connections and closes clients. */
export async function startGateway(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const { context, app, bootstrapAdmin } = await buildGateway(config, deps);
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const intake = config.SMTP_INTAKE_PORT !== undefined
    ? await startMailIntake({
        port: config.SMTP_INTAKE_PORT,
        host: config.HOST,
        maxMessageBytes: 10 * 1024 * 1024,
        logger: context.logger,
        onSender: async (sender) => {
          await context.limits.hit('intakeAddress', addressKey(sender.email)).catch(() => {
            throw Object.assign(new Error('rate limited'), { responseCode: 451 });
          });
          await registerEmailSender(context, sender, 'smtp-intake');
        },
      })
    : null;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    context,
    app,
    server,
    url,
    bootstrapAdmin,
    intake,
    close() {
      closing ??= (async () => {
        await intake?.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 5000).unref();
        });
        await context.jobs.stop();
        await context.policy.close();
        if (!deps.redis && context.redis) await context.redis.quit().catch(() => context.redis?.disconnect());
        if (!deps.store) await context.store.close();
      })();
      return closing;
    },
  };
}
