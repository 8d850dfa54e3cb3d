/**
 * Password rules for every place a person chooses a password: 12..128 characters
 * (code points) and not the address itself. Returns a user-facing problem or null.
 */
export function passwordProblem(password: string, email: string): string | null {
  const length = [...password].length;
  if (length < 12) return 'Use at least 12 characters.';
  if (length > 128) return 'Use at most 128 characters.';
  const lower = password.toLowerCase();
  const local = email.split('@')[0] ?? '';
  if (email && (lower === email.toLowerCase() || (local.length >= 4 && lower.includes(local.toLowerCase())))) {
    return 'Do not use your email address in your password.';
  }
  return null;
}
