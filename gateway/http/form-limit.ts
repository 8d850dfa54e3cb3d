/**
 * Rate limits on a page form: a form over its limit is answered by the same page again
 * with status 429, Retry-After and the limiter's message, not by an error page, so the
 * person keeps what they typed and reads why (login, the AD form, account linking,
 * sign-up and its re-send).
 *
 *   const limited = await formRateLimited(c, limits, [['signupIp', c.ip], ['signupAddress', key]]);
 *   if (limited) return renderForm(c, { error: limited });        // c.status is 429 already
 *
 * Limits are counted in order and the first one over stops the count. Any other
 * limiter failure (its store down) is thrown: 503, fail closed.
 *
 * Password checks go through `formLoginAttempt` instead: the device-cookie throttle
 * (gateway/runtime/login-throttle.ts), where only failures count.
 *
 *   const gate = await formLoginAttempt(c, limits, `pwd:${email}`);
 *   if (gate.limited) return renderForm(c, { error: gate.limited });
 *   if (passwordOk) await gate.attempt.succeeded();    // refund + a fresh device cookie
 */
import type { Context } from 'koa';
import { rateLimited, type LimitName, type RateLimits } from '../runtime/ratelimit.ts';
import { createLoginThrottle, type LoginAttempt } from '../runtime/login-throttle.ts';
import { AppError } from './errors.ts';
import { errorText } from './i18n.ts';
import { deviceFor, rememberDevice } from './device-cookie.ts';

export async function formRateLimited(c: Context, limits: Pick<RateLimits, 'hit'>, hits: ReadonlyArray<readonly [LimitName, string]>): Promise<string | null> {
  try {
    for (const [name, key] of hits) await limits.hit(name, key);
    return null;
  } catch (err) {
    if (!(err instanceof AppError) || err.status !== 429) throw err;
    return tooMany(c, err);
  }
}

function tooMany(c: Context, err: AppError): string {
  c.status = 429;
  const retryAfter = err.headers['retry-after'];
  if (retryAfter) c.set('Retry-After', retryAfter);
  return errorText(err.code, err.message, { seconds: Number(retryAfter ?? 1) });
}

/** A password check admitted by the throttle. */
export interface FormLoginAttempt {
  readonly trusted: boolean;
  /** The password was right: the points go back. */
  passwordAccepted(): Promise<void>;
  /** The whole sign-in succeeded: the points go back and the browser gets a fresh device cookie for the subject. */
  succeeded(): Promise<void>;
}

export type LoginGate = { limited: string; attempt?: undefined; locked: 'device' | 'account' | 'ip' } | { limited: null; attempt: FormLoginAttempt };

/**
 * Admits one password check for `subject` from this browser (its device cookie decides
 * which counters apply), or answers 429 on the page (c.status and Retry-After set).
 */
export async function formLoginAttempt(c: Context, limits: Pick<RateLimits, 'take' | 'refund'>, subject: string): Promise<LoginGate> {
  const admission = await createLoginThrottle(limits).admit(subject, { ip: c.ip, device: deviceFor(c, subject) });
  if (!admission.ok) return { limited: tooMany(c, rateLimited(admission.retryAfterS)), locked: admission.locked };
  const attempt: LoginAttempt = admission.attempt;
  let refunded = false;
  const passwordAccepted = async () => {
    if (refunded) return;
    refunded = true;
    await attempt.succeeded();
  };
  return {
    limited: null,
    attempt: {
      trusted: attempt.trusted,
      passwordAccepted,
      async succeeded() {
        await passwordAccepted();
        rememberDevice(c, subject);
      },
    },
  };
}
