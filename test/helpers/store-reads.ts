/**
 * Reading a store the way the gateway does: through the port methods production code
 * calls, never through test-only ones.
 *
 *   t.is(await countCustomers(gw.context.store), before + 1);
 */
import type { Store } from '../../adapters/store.ts';

/** How many customers there are: every page of `customers.list`, as the admin API pages them. */
export async function countCustomers(store: Pick<Store, 'customers'>): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await store.customers.list({ limit: 1000, ...(cursor ? { cursor } : {}) });
    count += page.items.length;
    if (!page.next) return count;
    cursor = page.next;
  }
}
