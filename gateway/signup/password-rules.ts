/**
 * Password rules for passwords people choose themselves (portal sign-up form, invite and
 * reset links): 12..128 characters counted in code points, not the email address or its
 * local part, and hard enough to guess by zxcvbn-ts's estimate (score 3 of 4 or more,
 * i.e. about 10^8 guesses), with its dictionaries of common passwords, English words and
 * names, keyboard patterns (`123qweasdzxc`), sequences, dates, repeats and l33t spellings
 * (`Password@123`). The person's own email and name count as dictionary words too.
 * A refusal carries zxcvbn's feedback (its warning and suggestions) for the form.
 *
 *   const rules = createPasswordRules();
 *   rules.problem('password1234', 'jo@corp.example');             // 'password_common'
 *   rules.check('Password@123', 'jo@corp.example')?.message;      // 'This password is too common or too easy to guess. This is similar to ...'
 */
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as englishDictionary, translations } from '@zxcvbn-ts/language-en';

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

/** A refused password: the rule, and the sentence(s) to show next to the field. */
export interface PasswordVerdict {
  problem: PasswordProblem;
  /** PASSWORD_MESSAGES[problem], followed for `password_common` by the estimator's warning and suggestions. */
  message: string;
  /** The estimator's warning and suggestions alone (empty for the other rules). */
  feedback: string[];
}

export interface PasswordRules {
  /** The first rule the password breaks, or null when it is acceptable. */
  problem(password: string, email: string): PasswordProblem | null;
  /** The same decision with the message and feedback for the form; `userInputs` (name, other spellings of the address) count as guessable words. */
  check(password: string, email: string, userInputs?: string[]): PasswordVerdict | null;
  /** True when the estimator finds the password guessable (below PASSWORD_MIN_SCORE). */
  isCommon(password: string): boolean;
}

/** Length in code points, so an emoji or a CJK character counts as one. */
export function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n += 1;
  return n;
}

// Building the ranked dictionaries takes about a second: once per process, on first use.
let estimator: ZxcvbnFactory | undefined;
function zxcvbn(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    translations,
    graphs: adjacencyGraphs,
    dictionary: { ...commonDictionary, ...englishDictionary },
  });
  return estimator;
}

export function createPasswordRules(): PasswordRules {
  function matchesEmail(password: string, email: string): boolean {
    const lowered = password.toLowerCase();
    const address = email.trim().toLowerCase();
    const at = address.lastIndexOf('@');
    const local = at > 0 ? address.slice(0, at) : address;
    return address !== '' && (lowered === address || lowered === local || lowered === address.replace(/\.$/, ''));
  }

  function check(password: string, email: string, userInputs: string[] = []): PasswordVerdict | null {
    const length = codePointLength(password);
    const plain = (problem: PasswordProblem): PasswordVerdict => ({ problem, message: PASSWORD_MESSAGES[problem], feedback: [] });
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
    const result = zxcvbn().check(password, words);
    if (result.score >= PASSWORD_MIN_SCORE) return null;
    const feedback = [result.feedback.warning, ...result.feedback.suggestions].filter((s): s is string => !!s);
    return { problem: 'password_common', message: [PASSWORD_MESSAGES.password_common, ...feedback].join(' '), feedback };
  }

  return {
    check,
    problem: (password, email) => check(password, email)?.problem ?? null,
    isCommon: (password) => zxcvbn().check(password).score < PASSWORD_MIN_SCORE,
  };
}
