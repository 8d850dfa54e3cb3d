/**
 * Password rules for accounts people create themselves (portal sign-up form):
 * 12..128 characters counted in code points, not one of the bundled common passwords
 * (compared case-insensitively), not the email address or its local part.
 *
 *   const rules = createPasswordRules();                  // reads gateway/signup/data/common-passwords.txt once
 *   rules.problem('password1234', 'jo@corp.example');     // 'password_common'
 *
 * The list is deliberately modest (~1,100 entries from well-known most-common lists and
 * their usual variants): it stops the obvious choices; the length rule does the rest.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

export const COMMON_PASSWORDS_FILE = fileURLToPath(new URL('./data/common-passwords.txt', import.meta.url));

export type PasswordProblem = 'password_too_short' | 'password_too_long' | 'password_common' | 'password_matches_email';

/** What to show next to the password field for each problem. */
export const PASSWORD_MESSAGES: Record<PasswordProblem, string> = {
  password_too_short: `Use at least ${PASSWORD_MIN_LENGTH} characters.`,
  password_too_long: `Use at most ${PASSWORD_MAX_LENGTH} characters.`,
  password_common: 'This password is too common. Choose one that is harder to guess.',
  password_matches_email: 'Your password must not be your email address.',
};

export interface PasswordRules {
  /** The first rule the password breaks, or null when it is acceptable. */
  problem(password: string, email: string): PasswordProblem | null;
  isCommon(password: string): boolean;
  readonly size: number;
}

/** Parses the list format: one password per line, `#` starts a comment line, blank lines ignored. */
export function parseCommonPasswords(text: string): Set<string> {
  const set = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    set.add(line.toLowerCase());
  }
  return set;
}

/** Length in code points, so an emoji or a CJK character counts as one. */
export function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n += 1;
  return n;
}

export function createPasswordRules(file: string = COMMON_PASSWORDS_FILE): PasswordRules {
  const common = parseCommonPasswords(readFileSync(file, 'utf8'));
  const isCommon = (password: string) => common.has(password.toLowerCase());
  return {
    size: common.size,
    isCommon,
    problem(password, email) {
      const length = codePointLength(password);
      if (length < PASSWORD_MIN_LENGTH) return 'password_too_short';
      if (length > PASSWORD_MAX_LENGTH) return 'password_too_long';
      if (isCommon(password)) return 'password_common';
      const lowered = password.toLowerCase();
      const address = email.trim().toLowerCase();
      const at = address.lastIndexOf('@');
      const local = at > 0 ? address.slice(0, at) : address;
      if (address && (lowered === address || lowered === local || lowered === address.replace(/\.$/, ''))) return 'password_matches_email';
      return null;
    },
  };
}
