/**
 * Operations endpoints and the request plumbing around every request.
 *
 *   GET /healthz   the process answers (liveness)
 *   GET /readyz    every store this process uses answers (readiness; 503 names the one down),
 *                  plus `policy`: the snapshot's state (`current`, `loading` while the
 *                  denylist compiles at start, `stale` while a rebuild is pending),
 *                  configuration version and counts of stored values left out (no error
 *                  texts: GET /admin/api/policy/status has them). Informational:
 *                  logins are served meanwhile; sign-ups that would be allowed answer 503.
 *   GET /static/app.css, /static/console.js   the stylesheet; the console's one script (progressive:
 *                  every console form works without it)
 *
 * and, on a port of its own (METRICS_PORT, loopback by default, off when unset), never on
 * the public port:
 *
 *   GET /metrics   Prometheus
 *
 *   const metrics = await createMetrics();   // only with METRICS_PORT
 *   app.use(requestId); app.use(countRequests(metrics.requests)); app.use(opsRoutes(...).routes());
 *   const server = await startMetricsServer(metrics, { port: 9464, host: '127.0.0.1' });
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Redis } from 'ioredis';
import type { Counter, Registry } from 'prom-client';
import type { Store } from '../../adapters/store.ts';
import type { PolicyRuntime } from '../runtime/policy-runtime.ts';
import { VIEWS_DIR } from './views.ts';

export interface Metrics {
  registry: Registry;
  requests: Counter<'status'>;
}

/**
 * The registry behind METRICS_PORT. Built only when that port is on (gateway/app.ts):
 * prom-client is loaded then, and nothing counts or observes (GC, event loop) for a
 * registry nobody can read.
 */
export async function createMetrics(): Promise<Metrics> {
  const { collectDefaultMetrics, Counter, Registry } = await import('prom-client');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'gatehouse_http_requests_total', help: 'HTTP requests by status class', labelNames: ['status'], registers: [registry] });
  return { registry, requests };
}

export interface ReadinessDeps {
  store: Pick<Store, 'kind' | 'ping'>;
  redis: Pick<Redis, 'ping'> | null;
  /** The live policy, for its state and the stored values it had to leave out. */
  policy?: Pick<PolicyRuntime, 'status'>;
}

export async function readiness(deps: ReadinessDeps): Promise<Record<string, 'up' | 'down'>> {
  const withTimeout = <T>(p: Promise<T>, ms: number) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);
  const checks: Record<string, 'up' | 'down'> = {};
  checks[deps.store.kind] = await withTimeout(deps.store.ping(), 2000).then(() => 'up' as const, () => 'down' as const);
  if (deps.redis) checks.redis = await withTimeout(deps.redis.ping(), 2000).then(() => 'up' as const, () => 'down' as const);
  return checks;
}

/** The static files, each with its content type: a fixed list, never a path from the request. */
const STATIC_FILES = [['app.css', 'text/css'], ['console.js', 'text/javascript'], ['passkeys.js', 'text/javascript']] as const;

export function opsRoutes(deps: ReadinessDeps): Router {
  const router = new Router();
  router.get('/healthz', (c) => {
    c.body = { status: 'ok' };
  });
  router.get('/readyz', async (c) => {
    const checks = await readiness(deps);
    const ready = Object.values(checks).every((v) => v === 'up');
    c.status = ready ? 200 : 503;
    // The error text stays out (it can name internal hosts): the admin API's /policy/status has it.
    const { lastError: _hidden, ...policy } = deps.policy?.status() ?? { lastError: null };
    c.body = deps.policy
      ? { status: ready ? 'ready' : 'not_ready', checks, policy }
      : { status: ready ? 'ready' : 'not_ready', checks };
  });
  for (const [file, type] of STATIC_FILES) {
    router.get(`/static/${file}`, async (c) => {
      c.type = type;
      c.set('Cache-Control', 'public, max-age=3600');
      c.body = await readFile(new URL(`static/${file}`, `file://${VIEWS_DIR}`));
    });
  }
  // Passkeys (script-src 'self'): @simplewebauthn/browser's own bundle (it defines the
  // global SimpleWebAuthnBrowser), served from the installed package.
  router.get('/static/webauthn-browser.js', async (c) => {
    c.type = 'text/javascript';
    c.set('Cache-Control', 'public, max-age=3600');
    c.body = await readFile(new URL('../dist/bundle/index.umd.min.js', import.meta.resolve('@simplewebauthn/browser')));
  });
  return router;
}

/**
 * The metrics endpoint on its own listener, so the public port never serves it: only
 * `GET /metrics` answers, everything else is 404. Resolves once the port is bound.
 */
export async function startMetricsServer(metrics: Metrics, options: { port: number; host: string }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export async function requestId(ctx: Context, next: Next): Promise<void> {
  const incoming = ctx.get('x-request-id');
  ctx.state.requestId = /^[\w-]{8,64}$/.test(incoming) ? incoming : randomUUID();
  ctx.set('X-Request-Id', ctx.state.requestId);
  await next();
}

export function countRequests(counter: Counter<'status'>) {
  return async function count(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } finally {
      ctx.res.once('finish', () => counter.inc({ status: `${Math.floor(ctx.res.statusCode / 100)}xx` }));
    }
  };
}
