/**
 * Rate limits (rate-limiter-flexible). Counters live in Redis when one is configured (one
 * node, Sentinel or Cluster: each counter is one key), so every gateway process shares them; in memory otherwise. A store error in the limiter
 * fails closed (the attempt is refused with 503), never open.
 *
 *   await limits.hit('signupIp', ctx.ip);          // counts one; throws AppError 429 rate_limited when over
 *   const taken = await limits.take('loginIp', ip); // counts one, reports instead of throwing
 *   await limits.refund('loginIp', ip);             // gives it back (a sign-in that succeeded)
 *
 * Sign-in limits follow OWASP's device-cookie scheme (gateway/runtime/login-throttle.ts):
 * `loginAccount` counts failed sign-ins per account from browsers without a device
 * cookie for it, `loginDevice` failed sign-ins per device cookie, `loginIp` failed
 * sign-ins per client address from such browsers, across accounts. A sign-in takes a
 * point before the password is checked (so concurrent guesses cannot overshoot) and a
 * correct password refunds it: successes never count.
 */
import { createRequire } from 'node:module';
import type { RateLimiterAbstract, RateLimiterMemory as MemoryLimiter, RateLimiterRedis as RedisLimiter, RateLimiterRes as LimiterRes } from 'rate-limiter-flexible';
import type { RedisClient } from './redis.ts';
import { AppError, unavailable } from '../http/errors.ts';
import { canonicalizeEmail } from '../../policies/index.ts';

// The package's index loads every store it supports (MongoDB, MySQL, Postgres, DynamoDB,
// etcd, Prisma...: 36 modules, 25 ms of every start); these are its files for the two used
// here (the package has no exports map: its files are its public paths). Redis's only with Redis.
const require = createRequire(import.meta.url);
const RateLimiterMemory = require('rate-limiter-flexible/lib/RateLimiterMemory.js') as typeof MemoryLimiter;
const RateLimiterRes = require('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof LimiterRes;
const redisLimiter = () => require('rate-limiter-flexible/lib/RateLimiterRedis.js') as typeof RedisLimiter;

/**
 * The key for a per-address limit: the canonical address (so case, a trailing dot or
 * other spellings of one address share one counter), or the raw input, bounded, when it
 * is not a valid address at all.
 */
export function addressKey(raw: string): string {
  const canonical = canonicalizeEmail(raw);
  return canonical.ok ? canonical.email : raw.trim().toLowerCase().slice(0, 320);
}

export type LimitName =
  | 'loginIp'
  | 'loginAccount'
  | 'loginDevice'
  | 'secondFactor'
  | 'externalIp'
  | 'signupIp'
  | 'signupAddress'
  | 'resendAddress'
  | 'intakeAddress'
  | 'intakeClient'
  | 'intakeDomain'
  | 'searchUser'
  | 'consoleFormIp';

export interface LimitSpec {
  points: number;
  durationS: number;
}

/** What `take` reports: whether the point was within the limit, and when the window ends. */
export interface Taken {
  ok: boolean;
  retryAfterS: number;
}

export interface RateLimits {
  /** Counts one attempt; throws 429 `rate_limited` when the key is over its limit. */
  hit(name: LimitName, key: string): Promise<void>;
  /** Counts one attempt and reports whether it was within the limit (never throws 429). */
  take(name: LimitName, key: string): Promise<Taken>;
  /** Gives back one point taken earlier (a sign-in that turned out right). */
  refund(name: LimitName, key: string): Promise<void>;
  /** Forgets a key. */
  reset(name: LimitName, key: string): Promise<void>;
}

/** The 429 every limit answers with. */
export function rateLimited(retryAfterS: number): AppError {
  const retry = Math.max(1, Math.ceil(retryAfterS));
  return new AppError('rate_limited', 429, `Too many attempts. Please wait ${retry} seconds and try again.`, {
    headers: { 'retry-after': String(retry) },
  });
}

export function createRateLimits(specs: Record<LimitName, LimitSpec>, redis: RedisClient | null): RateLimits {
  const limiters = new Map<LimitName, RateLimiterAbstract>();
  for (const [name, spec] of Object.entries(specs) as [LimitName, LimitSpec][]) {
    const opts = { keyPrefix: `gh:rl:${name}`, points: spec.points, duration: spec.durationS };
    limiters.set(name, redis ? new (redisLimiter())({ ...opts, storeClient: redis, insuranceLimiter: undefined }) : new RateLimiterMemory(opts));
  }
  const get = (name: LimitName) => {
    const limiter = limiters.get(name);
    if (!limiter) throw new Error(`unknown rate limit ${name}`);
    return limiter;
  };
  async function take(name: LimitName, key: string): Promise<Taken> {
    try {
      const res = await get(name).consume(key.toLowerCase());
      return { ok: true, retryAfterS: res.msBeforeNext / 1000 };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { ok: false, retryAfterS: err.msBeforeNext / 1000 };
      throw unavailable(`rate limiter ${name} failed`, err);
    }
  }
  return {
    take,
    async hit(name, key) {
      const taken = await take(name, key);
      if (!taken.ok) throw rateLimited(taken.retryAfterS);
    },
    async refund(name, key) {
      try {
        await get(name).reward(key.toLowerCase(), 1);
      } catch (err) {
        throw unavailable(`rate limiter ${name} failed`, err);
      }
    },
    async reset(name, key) {
      await get(name).delete(key.toLowerCase()).catch(() => undefined);
    },
  };
}

/** The limits from the configuration (every number documented in .env.example). */
export function defaultLimitSpecs(config: {
  RATE_LIMIT_LOGIN_IP: number;
  RATE_LIMIT_LOGIN_ACCOUNT: number;
  RATE_LIMIT_LOGIN_DEVICE: number;
  RATE_LIMIT_LOGIN_WINDOW_S: number;
  RATE_LIMIT_SECOND_FACTOR: number;
  RATE_LIMIT_EXTERNAL_IP: number;
  RATE_LIMIT_WINDOW_S: number;
  RATE_LIMIT_SIGNUP_IP: number;
  RATE_LIMIT_SIGNUP_ADDRESS: number;
  MAIL_INTAKE_DOMAIN_LIMIT: number;
}): Record<LimitName, LimitSpec> {
  const w = config.RATE_LIMIT_WINDOW_S;
  const login = config.RATE_LIMIT_LOGIN_WINDOW_S;
  return {
    loginIp: { points: config.RATE_LIMIT_LOGIN_IP, durationS: login },
    loginAccount: { points: config.RATE_LIMIT_LOGIN_ACCOUNT, durationS: login },
    loginDevice: { points: config.RATE_LIMIT_LOGIN_DEVICE, durationS: login },
    secondFactor: { points: config.RATE_LIMIT_SECOND_FACTOR, durationS: login },
    // Sign-ins handed over by another system (Google round trips, AD connector
    // assertions): nothing to guess there, the limit bounds the work and stored state.
    externalIp: { points: config.RATE_LIMIT_EXTERNAL_IP, durationS: w },
    signupIp: { points: config.RATE_LIMIT_SIGNUP_IP, durationS: w },
    signupAddress: { points: config.RATE_LIMIT_SIGNUP_ADDRESS, durationS: w },
    resendAddress: { points: 3, durationS: w },
    intakeAddress: { points: 10, durationS: w },
    intakeClient: { points: 1000, durationS: 60 },
    // Inbound mail per authenticated sender domain per hour (both intakes): a domain that
    // passes DMARC still cannot mint accounts in bulk.
    intakeDomain: { points: config.MAIL_INTAKE_DOMAIN_LIMIT, durationS: 3600 },
    searchUser: { points: 60, durationS: 60 },
    // Console forms kept across a re-sign-in (up to the form limit each, an hour) per client
    // address per window: posting to the console needs no session, so this bounds what an
    // anonymous client can make the store keep. Over it, the form is simply not kept.
    consoleFormIp: { points: 30, durationS: w },
  };
}
