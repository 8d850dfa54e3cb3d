/**
 * How long a pending sign-up holds its address: as long as one of its emailed links
 * (verification or invite) is valid, and no longer (policies/identity.ts pendingHolds).
 *
 *   const until = await pendingUntil(store, customer.id, now);   // null: no live link, it holds nothing
 */
import type { OneTimeTokenKind, Store } from '../../adapters/store.ts';

/** The links whose life is a pending sign-up's hold on its address. */
export const PENDING_LINK_KINDS: readonly OneTimeTokenKind[] = ['verify-email', 'invite'];

/** When the newest live verification or invite link of this account expires, or null when none is live. */
export async function pendingUntil(store: Pick<Store, 'tokens'>, customerId: string, now: Date): Promise<Date | null> {
  let until: Date | null = null;
  for (const kind of PENDING_LINK_KINDS) {
    for (const token of await store.tokens.liveFor(kind, customerId, now)) {
      if (!until || token.expiresAt.getTime() > until.getTime()) until = token.expiresAt;
    }
  }
  return until;
}
