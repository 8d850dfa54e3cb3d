/**
 * The two secret-handling primitives every module uses, defined once:
 *
 *   hashSecret(secret)   SHA-256 hex of a one-time secret: what the store keeps instead of it
 *   safeEqual(a, b)      constant-time string comparison for tokens, states and handles
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
