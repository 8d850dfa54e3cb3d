/**
 * Sign-in throttling after OWASP's "Slow Down Online Guessing Attacks with Device
 * Cookies": a browser that signed in to an account before carries a device cookie for
 * it (gateway/http/device-cookie.ts: signed, bound to the account, with a nonce), and
 *
 *   with a valid device cookie   failures count against that cookie only (`loginDevice`,
 *                                keyed by its nonce); a cookie that fails too often is
 *                                itself locked out until its window ends;
 *   without one (untrusted)      failures count against the account (`loginAccount`: the
 *                                account is locked for untrusted browsers only) and
 *                                against the client address, across accounts (`loginIp`).
 *
 * So an attack on an account never locks out its owner's own browser, and a hundred
 * people signing in from one office address never use up that address's budget: a point
 * is taken BEFORE the password is checked (concurrent guesses cannot overshoot the
 * limit) and a correct password gives it back (`succeeded`).
 *
 *   const admission = await throttle.admit('pwd:jane@example.com', { ip, device: nonceOrNull });
 *   if (!admission.ok) return tooMany(admission.retryAfterS);
 *   ... check the password ...
 *   if (right) await admission.attempt.succeeded();      // a wrong one keeps its point
 */
import { addressKey, type RateLimits } from './ratelimit.ts';

/** Who is trying: the client address and the nonce of a valid device cookie for the subject, if any. */
export interface LoginClient {
  ip: string;
  device: string | null;
}

export interface LoginAttempt {
  /** True when the browser had a valid device cookie for the subject. */
  readonly trusted: boolean;
  /** The credentials were right: the points taken are given back. */
  succeeded(): Promise<void>;
}

export type Admission =
  | { ok: true; attempt: LoginAttempt }
  /** `locked`: which counter refused (the audit log says; the person reads one message). */
  | { ok: false; retryAfterS: number; locked: 'device' | 'account' | 'ip' };

export interface LoginThrottle {
  /** Takes this attempt's points for `subject` (an account key such as `pwd:<email>` or `ad:<objectGUID>`), or refuses. */
  admit(subject: string, client: LoginClient): Promise<Admission>;
}

export function createLoginThrottle(limits: Pick<RateLimits, 'take' | 'refund'>): LoginThrottle {
  return {
    async admit(subject, client) {
      if (client.device) {
        const device = client.device;
        const taken = await limits.take('loginDevice', device);
        if (!taken.ok) return { ok: false, retryAfterS: taken.retryAfterS, locked: 'device' };
        return { ok: true, attempt: { trusted: true, succeeded: () => limits.refund('loginDevice', device) } };
      }
      const ip = await limits.take('loginIp', client.ip);
      if (!ip.ok) return { ok: false, retryAfterS: ip.retryAfterS, locked: 'ip' };
      const account = await limits.take('loginAccount', subject);
      if (!account.ok) {
        // Refused before any password check: not a failure of this address.
        await limits.refund('loginIp', client.ip);
        return { ok: false, retryAfterS: account.retryAfterS, locked: 'account' };
      }
      return {
        ok: true,
        attempt: {
          trusted: false,
          async succeeded() {
            await Promise.all([limits.refund('loginIp', client.ip), limits.refund('loginAccount', subject)]);
          },
        },
      };
    },
  };
}

/** The throttle subject of a password sign-in: the typed address, canonical (every spelling of one address is one account). */
export function passwordSubject(typedEmail: string): string {
  return `pwd:${addressKey(typedEmail)}`;
}

/**
 * A directory login as typed, normalised so that the spellings of one Windows login are
 * one subject when the directory search finds nothing: `CORP\jdoe`, `jdoe@corp.local`
 * and `JDoe` are all `ad-login:jdoe`. When the search finds the entry, the entry itself
 * is the subject (`directoryEntrySubject`).
 */
export function directoryLoginSubject(typed: string): string {
  let login = typed.trim().toLowerCase();
  const slash = login.lastIndexOf('\\');
  if (slash >= 0) login = login.slice(slash + 1);
  const at = login.indexOf('@');
  if (at > 0) login = login.slice(0, at);
  return `ad-login:${login.slice(0, 256)}`;
}

/** The subject of a directory entry the search found: its objectGUID, else its DN (lower-cased). */
export function directoryEntrySubject(entry: { dn: string; objectGuid: string | null }): string {
  return entry.objectGuid ? `ad:guid:${entry.objectGuid.toLowerCase()}` : `ad:dn:${entry.dn.trim().toLowerCase()}`;
}
