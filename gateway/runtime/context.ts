/**
 * The shapes every part of the gateway is built from, in a module of their own so that
 * route modules can name what they need without importing the composition root
 * (gateway/app.ts), which imports them: no import cycles, type imports included.
 *
 *   export function sharingRoutes(ctx: Pick<GatewayContext, 'store' | 'policy'>): Router
 *
 * Route modules take a `Pick<GatewayContext, ...>` of exactly what they use.
 */
import type { Account, KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Store } from '../../adapters/store.ts';
import type { DNSResolver } from '../../adapters/mail-auth.ts';
import type { OutboxWorker } from '../../adapters/mailer.ts';
import type { Views } from '../http/views.ts';
import type { AccountSessions } from '../oidc/account-sessions.ts';
import type { ClientRegistry } from '../oidc/clients.ts';
import type { RealmMount } from '../oidc/realm.ts';
import type { Registration } from '../signup/registration.ts';
import type { Config } from './config.ts';
import type { KeyMaterial } from './keys.ts';
import type { Logger } from './logger.ts';
import type { PasswordHasher } from './passwords.ts';
import type { PolicyRuntime } from './policy-runtime.ts';
import type { RateLimits } from './ratelimit.ts';
import type { RedisClient } from './redis.ts';

/** A message for the durable outbox. */
export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/** An audit event as callers give it (time is added on write). */
export interface AuditEvent {
  actor: string;
  target?: string;
  before?: unknown;
  after?: unknown;
  data?: Record<string, unknown>;
}

/** Background jobs of one gateway process: the outbox sender and the expired-token sweeper. */
export interface BackgroundJobs {
  outbox: OutboxWorker | null;
  stop(): Promise<void>;
}

/** Everything a route module may need; built once per gateway by gateway/app.ts. */
export interface GatewayContext {
  config: Config;
  logger: Logger;
  store: Store;
  redis: RedisClient | null;
  /** The root layout's provider (issuer ISSUER). */
  provider: Provider;
  /** The Keycloak layout: one provider per realm (issuer ISSUER/realms/{name}). */
  realms: RealmMount[];
  /** The account lookup both layouts share (claims by scope). */
  findAccount(ctx: KoaContextWithOIDC, sub: string): Promise<Account | undefined>;
  hasher: PasswordHasher;
  limits: RateLimits;
  views: Views;
  keys: KeyMaterial;
  /** Portal clients (admin-managed, in the store; CLIENTS_FILE seeds them), the same copy in every process. */
  clients: ClientRegistry;
  jobs: BackgroundJobs;
  /** Ends every grant, token and session of an account (disable, delete, password reset), with back-channel logout. */
  sessions: AccountSessions;
  policy: PolicyRuntime;
  registration: Registration;
  /** Queues a message in the durable outbox (sent by the outbox worker, retried, never lost). */
  sendMail(message: OutgoingMail): Promise<void>;
  audit(action: string, event: AuditEvent): Promise<void>;
}

/** What a caller may inject instead of what config would open. */
export interface GatewayDeps {
  logger?: Logger;
  /** Inject a store (tests, migrate); default from MONGODB_URI or the embedded store. */
  store?: Store;
  /** Inject a Redis client; default from REDIS_URL / REDIS_SENTINELS / REDIS_CLUSTER_NODES, or none. */
  redis?: RedisClient | null;
  /** DNS lookups of the SMTP intake's SPF/DKIM/DMARC checks; default the system resolver (tests: a table). */
  mailResolver?: DNSResolver;
}
