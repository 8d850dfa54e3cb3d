/**
 * gateway/runtime/: the running process, below HTTP. context.ts names the shapes every
 * part is built from (GatewayContext, GatewayDeps) so route modules never import the
 * composition root; config.ts validates the environment at boot (one line per bad
 * value); logger, key material, the argon2 hasher with the one timing-safe password
 * check (passwords.ts), secrets.ts (hashSecret, constant-time compare), rate limits,
 * the live policy shared across processes (policy-runtime.ts), the bootstrap admin,
 * opening the store and Redis, and the background jobs (outbox sender, sweeper). Modules
 * here may import policies/, adapters/ and gateway/http/ errors; other gateway folders
 * only as types in context.ts. Nothing here opens a connection at import time.
 *
 *   const config = loadConfig(process.env);
 *   const store = await openStore(config, logger);
 */
export type { GatewayContext, GatewayDeps, OutgoingMail, AuditEvent, BackgroundJobs } from './context.ts';
export { loadConfig, type Config } from './config.ts';
export { createLogger, type Logger } from './logger.ts';
export { loadKeyMaterial } from './keys.ts';
export { createPasswordHasher, passwordMatches, type PasswordHasher } from './passwords.ts';
export { addressKey, createRateLimits, defaultLimitSpecs, type RateLimits } from './ratelimit.ts';
export { ensureBootstrapAdmin, type BootstrapAdmin } from './bootstrap.ts';
export { createPolicyRuntime, loadPlugins, type PolicyRuntime } from './policy-runtime.ts';
export { oidcAdapterFor, openStore } from './store.ts';
export { openRedis } from './redis.ts';
export { startBackgroundJobs } from './jobs.ts';
export { hashSecret, safeEqual } from './secrets.ts';
export { secondFactors, type SecondFactors } from './second-factor.ts';
