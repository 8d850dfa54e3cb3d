/**
 * Rate limits (rate-limiter-flexible). Counters live in Redis when one is configured (one
 * node, Sentinel or Cluster: each counter is one key), so every gateway process shares them; in memory otherwise. A store error in the limiter
 * fails closed (the attempt is refused with 503), never open.
 *
 *   await limits.hit('loginIp', ctx.ip);   // throws AppError 429 rate_limited when over
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RedisClient } from './redis.ts';
import { AppError, unavailable } from '../http/errors.ts';
import { canonicalizeEmail } from '../../policies/index.ts';

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
  | 'signupIp'
  | 'signupAddress'
  | 'resendAddress'
  | 'intakeAddress'
  | 'intakeClient'
  | 'intakeDomain'
  | 'searchUser';

export interface LimitSpec {
  points: number;
  durationS: number;
}

export interface RateLimits {
  /** Counts one attempt; throws 429 `rate_limited` when the key is over its limit. */
  hit(name: LimitName, key: string): Promise<void>;
  /** Forgets a key (e.g. the per-account login counter after a successful login). */
  reset(name: LimitName, key: string): Promise<void>;
}

export function createRateLimits(specs: Record<LimitName, LimitSpec>, redis: RedisClient | null): RateLimits {
  const limiters = new Map<LimitName, RateLimiterAbstract>();
  for (const [name, spec] of Object.entries(specs) as [LimitName, LimitSpec][]) {
    const opts = { keyPrefix: `gh:rl:${name}`, points: spec.points, duration: spec.durationS };
    limiters.set(name, redis ? new RateLimiterRedis({ ...opts, storeClient: redis, insuranceLimiter: undefined }) : new RateLimiterMemory(opts));
  }
  const get = (name: LimitName) => {
    const limiter = limiters.get(name);
    if (!limiter) throw new Error(`unknown rate limit ${name}`);
    return limiter;
  };
  return {
    async hit(name, key) {
      try {
        await get(name).consume(key.toLowerCase());
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          const retry = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
          throw new AppError('rate_limited', 429, `Too many attempts. Please wait ${retry} seconds and try again.`, {
            headers: { 'retry-after': String(retry) },
          });
        }
        throw unavailable(`rate limiter ${name} failed`, err);
      }
    },
    async reset(name, key) {
      await get(name).delete(key.toLowerCase()).catch(() => undefined);
    },
  };
}

export function defaultLimitSpecs(config: {
  RATE_LIMIT_LOGIN_IP: number;
  RATE_LIMIT_LOGIN_ACCOUNT: number;
  RATE_LIMIT_WINDOW_S: number;
  RATE_LIMIT_SIGNUP_IP: number;
  RATE_LIMIT_SIGNUP_ADDRESS: number;
  MAIL_INTAKE_DOMAIN_LIMIT: number;
}): Record<LimitName, LimitSpec> {
  const w = config.RATE_LIMIT_WINDOW_S;
  return {
    loginIp: { points: config.RATE_LIMIT_LOGIN_IP, durationS: w },
    loginAccount: { points: config.RATE_LIMIT_LOGIN_ACCOUNT, durationS: w },
    signupIp: { points: config.RATE_LIMIT_SIGNUP_IP, durationS: w },
    signupAddress: { points: config.RATE_LIMIT_SIGNUP_ADDRESS, durationS: w },
    resendAddress: { points: 3, durationS: w },
    intakeAddress: { points: 10, durationS: w },
    intakeClient: { points: 1000, durationS: 60 },
    // Inbound mail per authenticated sender domain per hour (both intakes): a domain that
    // passes DMARC still cannot mint accounts in bulk.
    intakeDomain: { points: config.MAIL_INTAKE_DOMAIN_LIMIT, durationS: 3600 },
    searchUser: { points: 60, durationS: 60 },
  };
}
