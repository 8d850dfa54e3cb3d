/**
 * Password rules for passwords people choose themselves (portal sign-up form, invite and
 * reset links): 12..128 characters counted in code points, not the email address or its
 * local part, and hard enough to guess by zxcvbn-ts's estimate (score 3 of 4 or more,
 * i.e. about 10^8 guesses), with its dictionaries of common passwords, English words and
 * names, keyboard patterns (`123qweasdzxc`), sequences, dates, repeats and l33t spellings
 * (`Password@123`). The person's own email and name count as dictionary words too.
 * A refusal carries zxcvbn's feedback (its warning and suggestions) for the form.
 * The estimator runs in a worker thread (password-strength-worker.ts), so a burst of
 * sign-ups never stalls the event loop.
 *
 *   const rules = createPasswordRules();
 *   await rules.problem('password1234', 'jo@corp.example');             // 'password_common'
 *   (await rules.check('Password@123', 'jo@corp.example'))?.message;    // 'This password is too common or too easy to guess. This is similar to ...'
 */
import { Worker } from 'node:worker_threads';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;
/** zxcvbn score a password needs (0..4): 3 = "safely unguessable" against an online attack with throttling and a slowed offline one. */
export const PASSWORD_MIN_SCORE = 3;

export type PasswordProblem = 'password_too_short' | 'password_too_long' | 'password_common' | 'password_matches_email';

/** What to show next to the password field for each problem (the estimator's feedback follows `password_common`). */
export const PASSWORD_MESSAGES: Record<PasswordProblem, string> = {
  password_too_short: `Use at least ${PASSWORD_MIN_LENGTH} characters.`,
  password_too_long: `Use at most ${PASSWORD_MAX_LENGTH} characters.`,
  password_common: 'This password is too common or too easy to guess.',
  password_matches_email: 'Your password must not be your email address.',
};

/**
 * What the form shows for a refused password, in the request's language: the rule's own
 * sentence (`password.<problem>` in views/locales/), then the estimator's warning and
 * suggestions (`password.zxcvbn.<key>`; the dictionaries are English, the words are not).
 */
export function passwordMessage(t: (key: string, values?: Record<string, string | number>) => string, verdict: PasswordVerdict): string {
  return [t(`password.${verdict.problem}`, { min: PASSWORD_MIN_LENGTH, max: PASSWORD_MAX_LENGTH }), ...verdict.feedbackKeys.map((key) => t(`password.zxcvbn.${key}`))].join(' ');
}

/** A refused password: the rule, and the sentence(s) to show next to the field. */
export interface PasswordVerdict {
  problem: PasswordProblem;
  /** PASSWORD_MESSAGES[problem], followed for `password_common` by the estimator's warning and suggestions. */
  message: string;
  /** The estimator's warning and suggestions alone, in English (empty for the other rules). */
  feedback: string[];
  /** The same as message keys (`warnings.straightRow`), for pages in the customer's language. */
  feedbackKeys: string[];
}

export interface PasswordRules {
  /** The first rule the password breaks, or null when it is acceptable. */
  problem(password: string, email: string): Promise<PasswordProblem | null>;
  /** The same decision with the message and feedback for the form; `userInputs` (name, other spellings of the address) count as guessable words. */
  check(password: string, email: string, userInputs?: string[]): Promise<PasswordVerdict | null>;
  /** True when the estimator finds the password guessable (below PASSWORD_MIN_SCORE). */
  isCommon(password: string): Promise<boolean>;
}

/** Length in code points, so an emoji or a CJK character counts as one. */
export function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n += 1;
  return n;
}

interface Estimate {
  score: number;
  feedback: string[];
  feedbackKeys: string[];
}

/**
 * One estimator thread per process, started on first use (building the ranked dictionaries
 * takes about a second); it keeps the process alive only while a check is pending. Checks queue in
 * order; if the thread dies, the checks waiting on it fail (the request answers 500) and
 * the next check starts a new one.
 */
let worker: Worker | null = null;
let nextId = 0;
const pending = new Map<number, { resolve: (e: Estimate) => void; reject: (err: Error) => void }>();

function estimate(password: string, userInputs: string[]): Promise<Estimate> {
  if (!worker) {
    const started = new Worker(new URL('./password-strength-worker.ts', import.meta.url));
    started.on('message', (m: Estimate & { id: number }) => {
      pending.get(m.id)?.resolve(m);
      pending.delete(m.id);
      if (pending.size === 0) started.unref();
    });
    const fail = (err: Error) => {
      if (worker === started) worker = null;
      for (const waiting of pending.values()) waiting.reject(err);
      pending.clear();
    };
    started.on('error', fail);
    started.on('exit', (code) => fail(new Error(`password estimator exited (${code})`)));
    worker = started;
  }
  const id = ++nextId;
  // Keeps the process alive while a check is pending, never when idle.
  if (pending.size === 0) worker.ref();
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker!.postMessage({ id, password, userInputs });
  });
}

export function createPasswordRules(): PasswordRules {
  function matchesEmail(password: string, email: string): boolean {
    const lowered = password.toLowerCase();
    const address = email.trim().toLowerCase();
    const at = address.lastIndexOf('@');
    const local = at > 0 ? address.slice(0, at) : address;
    return address !== '' && (lowered === address || lowered === local || lowered === address.replace(/\.$/, ''));
  }

  async function check(password: string, email: string, userInputs: string[] = []): Promise<PasswordVerdict | null> {
    const length = codePointLength(password);
    const plain = (problem: PasswordProblem): PasswordVerdict => ({ problem, message: PASSWORD_MESSAGES[problem], feedback: [], feedbackKeys: [] });
    if (length < PASSWORD_MIN_LENGTH) return plain('password_too_short');
    if (length > PASSWORD_MAX_LENGTH) return plain('password_too_long');
    const emails = [email, ...userInputs.filter((input) => input.includes('@'))];
    if (emails.some((address) => matchesEmail(password, address))) return plain('password_matches_email');
    // Each input whole, its parts, and its parts run together: 'Pat Example' -> pat, example, patexample;
    // an address also by its local part.
    const words = [...emails, ...userInputs].flatMap((input) => {
      const at = input.lastIndexOf('@');
      const parts = input.split(/[@\s._+-]+/).filter(Boolean);
      return [input, at > 0 ? input.slice(0, at) : '', ...parts, parts.join('')];
    }).filter((w) => w.length >= 3);
    const { score, feedback, feedbackKeys } = await estimate(password, words);
    if (score >= PASSWORD_MIN_SCORE) return null;
    return { problem: 'password_common', message: [PASSWORD_MESSAGES.password_common, ...feedback].join(' '), feedback, feedbackKeys };
  }

  return {
    check,
    problem: async (password, email) => (await check(password, email))?.problem ?? null,
    isCommon: async (password) => (await estimate(password, [])).score < PASSWORD_MIN_SCORE,
  };
}
