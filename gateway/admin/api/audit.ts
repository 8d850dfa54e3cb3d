/**
 * `GET /admin/api/audit`: the audit log, newest first, filtered by action, actor,
 * target, a customer (their id and address: the whole trail, sign-up decisions
 * included), a free search (an address, a customer, company or service id, a company
 * name) and time, paged by cursor. Every event carries `actorLabel` and `targetLabel`:
 * who and what as people know them (an admin's address, a company's name), so the
 * console never shows a raw id where a name exists.
 */
import * as z from 'zod';
import { canonicalizeEmail } from '../../../policies/index.ts';
import type { AuditEvent, Store } from '../../../adapters/store.ts';
import { defineRoute, type AdminDeps, type AdminRoute } from './route.ts';
import { AuditQuery } from './schemas.ts';

const Event = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string().optional(),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  actorLabel: z.string().describe('Who, as people know them: an admin or customer by address, a client by id, "system"'),
  targetLabel: z.string().optional().describe('What it was about, by name: a customer by address, a company or service by name'),
});

type Kind = 'customer' | 'company' | 'service' | 'other';

function kindOf(action: string): Kind {
  const head = action.split('.')[0];
  return head === 'customer' ? 'customer' : head === 'company' ? 'company' : head === 'service' ? 'service' : 'other';
}

/** A name recorded in the event itself (before/after views), for objects deleted since. */
function recordedName(event: AuditEvent, field: 'email' | 'name'): string | undefined {
  for (const side of [event.after, event.before]) {
    const value = (side as Record<string, unknown> | null | undefined)?.[field];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/** Resolves actors and targets of a page of events to names, one lookup per distinct id. */
export async function labelEvents(store: Store, events: AuditEvent[]) {
  const cache = new Map<string, Promise<string | undefined>>();
  const once = (key: string, load: () => Promise<string | undefined>) => {
    if (!cache.has(key)) cache.set(key, load().catch(() => undefined));
    return cache.get(key)!;
  };
  const customer = (id: string) => once(`c:${id}`, async () => (await store.customers.get(id))?.email);
  const company = (id: string) => once(`co:${id}`, async () => (await store.companies.get(id))?.name);
  const service = (id: string) => once(`s:${id}`, async () => (await store.services.get(id))?.name);
  return Promise.all(
    events.map(async (event) => {
      const [who, id] = event.actor.includes(':') ? [event.actor.slice(0, event.actor.indexOf(':')), event.actor.slice(event.actor.indexOf(':') + 1)] : [event.actor, ''];
      let actorLabel = event.actor;
      if ((who === 'admin' || who === 'customer' || who === 'agent') && id) actorLabel = (await customer(id)) ?? `a deleted ${who === 'customer' ? 'customer' : 'account'}`;
      else if (who === 'client') actorLabel = `client ${id}`;
      let targetLabel = event.target;
      const kind = kindOf(event.action);
      if (event.target && kind === 'customer') targetLabel = (await customer(event.target)) ?? recordedName(event, 'email') ?? 'a deleted customer';
      if (event.target && kind === 'company') targetLabel = (await company(event.target)) ?? recordedName(event, 'name') ?? event.target;
      if (event.target && kind === 'service') targetLabel = (await service(event.target)) ?? recordedName(event, 'name') ?? event.target;
      return { ...event, at: event.at.toISOString(), actorLabel, ...(targetLabel !== undefined ? { targetLabel } : {}) };
    }),
  );
}

/** What a free search means as targets: the text, the address, the customer with it, companies so named. */
async function searchTargets(store: Store, search: string): Promise<string[]> {
  const targets = new Set([search]);
  const email = canonicalizeEmail(search);
  if (email.ok) {
    targets.add(email.email);
    const holder = await store.customers.findByEmail(email.email);
    if (holder) targets.add(holder.id);
  }
  const companies = await store.companies.page({ search, limit: 20 });
  for (const c of companies.items) if (c.name.toLowerCase() === search.toLowerCase() || c.id === search) targets.add(c.id);
  return [...targets];
}

export function auditRoutes({ gw }: AdminDeps): AdminRoute[] {
  return [
    defineRoute({
      name: 'listAudit',
      method: 'get',
      path: '/audit',
      summary: 'Audit events, newest first, with who and what by name',
      roles: ['admin'],
      query: AuditQuery,
      responses: { 200: { description: 'A page of events', schema: z.object({ items: z.array(Event), next: z.string().nullable() }) } },
      async handle({ query }) {
        const { customer, search, ...filters } = query;
        let targets: string[] | undefined;
        if (customer) {
          const found = await gw.store.customers.get(customer);
          targets = [customer, ...(found ? [found.email] : [])];
        }
        if (search) {
          const found = await searchTargets(gw.store, search);
          targets = targets ? targets.filter((t) => found.includes(t)) : found;
        }
        const page = await gw.store.audit.list({ ...filters, ...(targets ? { targets } : {}) });
        return { body: { items: await labelEvents(gw.store, page.items), next: page.next } };
      },
    }),
  ];
}
