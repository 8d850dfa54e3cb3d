/**
 * The gateway process (`npm start` runs it through gateway/start.js, which serves it and
 * every other .ts module from the type-strip cache): validate config, start the gateway, print what a newcomer needs
 * (console, sample portal and dev mailbox URLs, issuer, demo client, bootstrap admin),
 * and shut down gracefully on SIGTERM/SIGINT.
 */
import module from 'node:module';
import type { Store } from '../adapters/store.ts';
import type { SqliteStore } from '../adapters/store-sqlite.ts';
import type { Config } from './runtime/config.ts';
import { leanStart } from './runtime/lean-start.ts';
import { enableTypeScriptCache } from './runtime/ts-cache.js';

// Memory a start would keep for nothing while idle (see the module), before anything
// else is loaded (hence only these two modules above); undone at the first request.
const serving = leanStart();
// Keep V8's compiled code of every module between starts (in the OS temp dir): a quarter
// less start-up CPU. It covers what is imported after this line, hence the dynamic
// imports below.
module.enableCompileCache?.();
// And keep the type-stripped text of our own modules (Node 22 strips every .ts at every
// start, and keeps nothing): what is imported after this line is served from it (already
// on when start.js is the entry).
enableTypeScriptCache(new URL('..', import.meta.url));

/** SIGTERM/SIGINT: connections drain (gateway close) within this bound, then the process exits regardless. */
const SHUTDOWN_DRAIN_MS = 15_000;
/** Start-only V8 settings (lean-start.ts) end at the first request, or this long after the start. */
const SERVING_AFTER_MS = 30_000;
/** How long the last log lines may take to reach a slow log reader at exit. */
const LOG_FLUSH_MS = 1000;

async function main(): Promise<void> {
  const { ConfigError, loadConfig } = await import('./runtime/config.ts');
  const { createLogger, stdoutLogs } = await import('./runtime/logger.ts');
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) process.stderr.write(`gatehouse: configuration error: ${problem}\n`);
      process.exit(78);
    }
    throw err;
  }
  // Logs never block the process: a closed or stalled log pipe cannot stop a shutdown.
  const logOutput = stdoutLogs();
  const logger = createLogger(config.LOG_LEVEL, logOutput.stream);
  let gateway;
  try {
    const { startGateway } = await import('./app.ts');
    gateway = await startGateway(config, { logger });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) process.stderr.write(`gatehouse: configuration error: ${problem}\n`);
      process.exit(78);
    }
    const listen = listenProblem(err, config);
    if (listen) process.stderr.write(`gatehouse: ${listen}\n`);
    else logger.fatal({ err }, 'gateway failed to start');
    await logOutput.close(LOG_FLUSH_MS);
    process.exit(1);
  }

  const { firstRunLinks } = await import('./dev/index.ts');
  const links = firstRunLinks(gateway.context);
  const lines = [
    '',
    `Gatehouse is listening on ${gateway.url}`,
    `  admin console: ${links.console}   (sign in as the bootstrap admin below)`,
  ];
  if (links.samplePortal) lines.push(`  sample portal: ${links.samplePortal}   (a demo customer portal: sign up, sign in, see the claims)`);
  if (links.mailbox) lines.push(`  dev mailbox:   ${links.mailbox}   (outgoing mail, readable here because SMTP_URL is not set)`);
  lines.push(`  issuer:    ${config.ISSUER}`, `  discovery: ${links.discovery}`);
  if (gateway.metricsUrl) lines.push(`  metrics:   ${gateway.metricsUrl}/metrics`);
  if (gateway.context.clients.demo) {
    const d = gateway.context.clients.demo;
    lines.push('  demo portal client:', `    client_id:     ${d.clientId}`, `    client_secret: ${d.clientSecret}`, `    redirect_uri:  ${d.redirectUri}`);
  }
  const admin = gateway.bootstrapAdmin;
  lines.push(`  bootstrap admin: ${admin.email}`);
  if (admin.generatedPassword) lines.push(`    password (generated, shown once): ${admin.generatedPassword}`);
  else if (!admin.created) lines.push('    password: the one it has (printed at the first start, or changed since); lost it? "Forgot your password?" on the sign-in page');
  lines.push(`  data:      ${describeStore(gateway.context.store, config)}`);
  process.stdout.write(`${lines.join('\n')}\n\n`);
  // V8's defaults again from the first request on (lean-start.ts), or after a while for a
  // process that works without HTTP requests (SMTP intake, background jobs).
  gateway.server.once('request', serving);
  setTimeout(serving, SERVING_AFTER_MS).unref();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), SHUTDOWN_DRAIN_MS);
    force.unref();
    await gateway.close();
    logger.info('stopped');
    await logOutput.close(LOG_FLUSH_MS);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** Where this process keeps its data, for the start lines. */
function describeStore(store: Store, config: Config): string {
  if (store.kind === 'sqlite') return `${(store as SqliteStore).file.path} (embedded SQLite, this process only; back up with: npm run backup -- <file>)`;
  if (store.kind === 'mongodb') return `MongoDB, database "${config.MONGODB_DB}"`;
  return 'in this process only: NOT durable, lost when it stops';
}

await main();

/** One line for a listener that could not bind (a port in use or not ours to take), naming its variable. */
function listenProblem(err: unknown, config: { PORT: number; SMTP_INTAKE_PORT?: number | undefined; METRICS_PORT?: number | undefined }): string | null {
  const e = err as { syscall?: string; code?: string; address?: string; port?: number };
  if (e?.syscall !== 'listen' || (e.code !== 'EADDRINUSE' && e.code !== 'EACCES')) return null;
  const variable = e.port === config.SMTP_INTAKE_PORT ? 'SMTP_INTAKE_PORT' : e.port === config.METRICS_PORT ? 'METRICS_PORT' : 'PORT';
  const why = e.code === 'EADDRINUSE' ? 'another process is listening there' : 'this user may not listen there';
  return `cannot listen on ${e.address}:${e.port} (${variable}): ${why}`;
}
