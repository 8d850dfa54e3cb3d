/**
 * Rate limits on a page form: a form over its limit is answered by the same page again
 * with status 429, Retry-After and the limiter's message, not by an error page, so the
 * person keeps what they typed and reads why (login, the AD form, Google account
 * linking, sign-up and its re-send).
 *
 *   const limited = await formRateLimited(c, limits, [['loginIp', c.ip], ['loginAccount', key]]);
 *   if (limited) return renderForm(c, { error: limited });        // c.status is 429 already
 *
 * Limits are counted in order and the first one over stops the count. Any other
 * limiter failure (its store down) is thrown: 503, fail closed.
 */
import type { Context } from 'koa';
import type { LimitName, RateLimits } from '../runtime/ratelimit.ts';
import { AppError } from './errors.ts';

export async function formRateLimited(c: Context, limits: Pick<RateLimits, 'hit'>, hits: ReadonlyArray<readonly [LimitName, string]>): Promise<string | null> {
  try {
    for (const [name, key] of hits) await limits.hit(name, key);
    return null;
  } catch (err) {
    if (!(err instanceof AppError) || err.status !== 429) throw err;
    c.status = 429;
    const retryAfter = err.headers['retry-after'];
    if (retryAfter) c.set('Retry-After', retryAfter);
    return err.message;
  }
}
