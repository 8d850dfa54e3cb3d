/**
 * Starts a real gateway in-process on a free loopback port for a test file, on the
 * embedded store or an injected one, with Redis when a URL is given. Without MONGODB_URI,
 * DATA_DIR or an injected store, it gets the embedded SQLite store in a fresh temporary
 * data directory of its own (removed on close): nothing is written into the repository,
 * and no two gateways share state.
 *
 *   const gw = await startTestGateway({ REDIS_URL: redis.url });
 *   ...; await gw.close();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../gateway/runtime/config.ts';
import { startGateway, type Gateway, type GatewayDeps } from '../../gateway/app.ts';
import { createLogger } from '../../gateway/runtime/logger.ts';
import { freePort } from './ports.ts';

export const TEST_ADMIN = { email: 'admin@gatehouse.test', password: 'correct-horse-battery-staple' };
export const TEST_AUTOMATION = { clientId: 'gatehouse-automation', clientSecret: 'automation-secret-0123456789-abcdefghij' };

/** Cheap argon2 for tests that are not about hashing cost. */
const FAST_ARGON2 = { ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' };

export async function startTestGateway(env: Record<string, string | undefined> = {}, deps: GatewayDeps = {}): Promise<Gateway & { issuer: string }> {
  // freePort() releases the port before the gateway binds it; a listener that is not one of
  // freePort's reservations can still take it in between. A port we picked is picked again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(env, deps);
    } catch (error) {
      if (env.PORT || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw error;
    }
  }
}

async function startOnce(env: Record<string, string | undefined>, deps: GatewayDeps): Promise<Gateway & { issuer: string }> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const ownDataDir = !env.MONGODB_URI && !env.DATA_DIR && !deps.store ? mkdtempSync(join(tmpdir(), 'gh-data-')) : null;
  const issuer = env.ISSUER ?? `http://127.0.0.1:${port}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    // Server errors (5xx) are logged to stderr so a failing run says why; TAP stays on stdout.
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    HOST: '127.0.0.1',
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    ADMIN_CLIENT_ID: TEST_AUTOMATION.clientId,
    ADMIN_CLIENT_SECRET: TEST_AUTOMATION.clientSecret,
    ...FAST_ARGON2,
    ...(ownDataDir ? { DATA_DIR: ownDataDir } : {}),
    ...env,
    PORT: String(port),
    ISSUER: issuer,
  });
  const gateway = await startGateway(config, { logger: createLogger(config.LOG_LEVEL, process.stderr), ...deps }).catch((error: unknown) => {
    if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    throw error;
  });
  if (ownDataDir) {
    const close = gateway.close.bind(gateway);
    gateway.close = async () => {
      await close();
      rmSync(ownDataDir, { recursive: true, force: true });
    };
  }
  return Object.assign(gateway, { issuer });
}

/** Writes OIDC client metadata to a fresh temp file for CLIENTS_FILE and returns its path. */
export function writeClientsFile(clients: unknown[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gh-clients-')), 'clients.json');
  writeFileSync(file, JSON.stringify(clients));
  return file;
}
