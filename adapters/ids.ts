/**
 * Identifiers for stored records, and the opaque paging cursors both stores hand out.
 *
 * `newId()` is a random UUID for anything whose order does not matter. `newSortableId()`
 * is a UUIDv7-shaped id (48-bit millisecond time, then a per-process counter, then random
 * bits) whose string order follows creation order within one process, so "newest first"
 * listings (audit log) have a stable tie-break for events in the same millisecond.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Identity } from './store.ts';

/** @example const id = newId(); // '3b241101-e2bb-4255-8caf-4136c566a962' */
export function newId(): string {
  return randomUUID();
}

let lastMs = 0;
let sequence = 0;

/** @example const id = newSortableId(); // '0190b8a2-6c3e-7000-8a1b-...' (sorts by time) */
export function newSortableId(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else {
    sequence += 1;
    if (sequence > 0xfff) {
      lastMs += 1;
      sequence = 0;
    }
  }
  const time = lastMs.toString(16).padStart(12, '0');
  const seq = (0x7000 | sequence).toString(16);
  const rand = randomBytes(8);
  rand[0] = (rand[0]! & 0x3f) | 0x80;
  const tail = rand.toString('hex');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-${seq}-${tail.slice(0, 4)}-${tail.slice(4, 16)}`;
}

/** Page sizes every store applies the same way. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** A caller's `limit`, clamped to 1..MAX_PAGE_SIZE (default DEFAULT_PAGE_SIZE). */
export function pageSize(limit: number | undefined, fallback: number = DEFAULT_PAGE_SIZE): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(limit)));
}

/** Position after the last item of a page: a time (ms) and an id as tie-break. */
export interface CursorPosition {
  t: number;
  id: string;
}

/** @example encodeCursor({ t: 1700000000000, id: 'abc' }) // 'eyJ0Ijo...' */
export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify([position.t, position.id]), 'utf8').toString('base64url');
}

/** Throws InvalidCursorError on anything `encodeCursor` did not produce. */
export function decodeCursor(cursor: string): CursorPosition {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'number' && typeof parsed[1] === 'string') {
      return { t: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new InvalidCursorError();
}

/** A cursor after a position in a listing sorted by a string key, with the id as tie-break. */
export function encodeKeyCursor(key: string, id: string): string {
  return Buffer.from(JSON.stringify(['k', key, id]), 'utf8').toString('base64url');
}

/** Throws InvalidCursorError on anything `encodeKeyCursor` did not produce. */
export function decodeKeyCursor(cursor: string): { key: string; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 3 && parsed[0] === 'k' && typeof parsed[1] === 'string' && typeof parsed[2] === 'string') {
      return { key: parsed[1], id: parsed[2] };
    }
  } catch {
    // fall through to the error below
  }
  throw new InvalidCursorError();
}

/** A cursor that was not produced by this store (code `invalid_cursor`). */
export class InvalidCursorError extends Error {
  readonly code = 'invalid_cursor';
  constructor() {
    super('invalid_cursor');
    this.name = 'InvalidCursorError';
  }
}

/** The unique key of a federated identity (issuer + subject). */
export function identityKey(identity: Identity): string {
  return `${identity.issuer}|${identity.subject}`;
}

/** An identity as stored: issuer, subject and, when known, who linked it; other fields dropped. */
export function storedIdentity({ issuer, subject, linkedBy }: Identity): Identity {
  return typeof linkedBy === 'string' ? { issuer, subject, linkedBy } : { issuer, subject };
}

/** Identities without duplicates (same issuer + subject, the last one wins), extra fields dropped. */
export function uniqueIdentities(identities: readonly Identity[]): Identity[] {
  const seen = new Map<string, Identity>();
  for (const identity of identities) seen.set(identityKey(identity), storedIdentity(identity));
  return [...seen.values()];
}

/**
 * `identities` with `link` added, or with the held one's `linkedBy` changed; the same
 * array (===) when nothing changes.
 */
export function withIdentity(identities: readonly Identity[], link: Identity): readonly Identity[] {
  const key = identityKey(link);
  const at = identities.findIndex((held) => identityKey(held) === key);
  if (at < 0) return [...identities, storedIdentity(link)];
  if (link.linkedBy === undefined || identities[at]!.linkedBy === link.linkedBy) return identities;
  return identities.map((held, i) => (i === at ? storedIdentity(link) : held));
}
