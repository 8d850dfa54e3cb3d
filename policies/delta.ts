/**
 * One admin change to the customer-access configuration, as plain data: what the
 * gateway applies to its compiled snapshot instead of recompiling everything, and
 * what it broadcasts to the other gateway processes (gateway/runtime/policy-runtime.ts).
 *
 * Every delta is a "set state" operation (add these values, this company is now X,
 * this service is gone): applying one twice, or applying one to a snapshot that
 * already holds it, changes nothing. That is what lets a process that reloaded from
 * the store replay deltas that may already be in what it read.
 *
 *   const next = applyDelta(snapshot, { op: 'denylist.add', entries: [{ value: 'x.com', kind: 'domain' }] });
 *   const delta = parseDelta(JSON.parse(message).delta);   // null when malformed
 */
import * as z from 'zod';
import { changeCompany, changeDenylist, changePolicy, changeService, type Snapshot } from './snapshot.ts';
import type { Company, DenylistEntry, Policy, Service } from './types.ts';

export type PolicyDelta =
  | { op: 'policy.put'; policy: Policy }
  | { op: 'denylist.add'; entries: Array<Pick<DenylistEntry, 'value' | 'kind'>> }
  | { op: 'denylist.remove'; values: string[] }
  | { op: 'company.put'; company: Company }
  | { op: 'company.delete'; id: string }
  | { op: 'service.put'; service: Service }
  | { op: 'service.delete'; id: string };

/**
 * Applies one delta. The snapshot passed in is consumed (its Sets and Maps move to
 * the result, see policies/snapshot.ts): keep only the returned one.
 *
 * @example snapshot = applyDelta(snapshot, { op: 'company.delete', id: 'acme' });
 */
export function applyDelta(snapshot: Snapshot, delta: PolicyDelta): Snapshot {
  switch (delta.op) {
    case 'policy.put':
      return changePolicy(snapshot, delta.policy);
    case 'denylist.add':
      return changeDenylist(snapshot, { add: delta.entries });
    case 'denylist.remove':
      return changeDenylist(snapshot, { remove: delta.values });
    case 'company.put':
      return changeCompany(snapshot, delta.company.id, delta.company);
    case 'company.delete':
      return changeCompany(snapshot, delta.id, null);
    case 'service.put':
      return changeService(snapshot, delta.service.id, delta.service);
    case 'service.delete':
      return changeService(snapshot, delta.id, null);
  }
}

/** How many items a delta carries (a denylist change of 10,000 entries is 10,000). */
export function deltaSize(delta: PolicyDelta): number {
  if (delta.op === 'denylist.add') return delta.entries.length;
  if (delta.op === 'denylist.remove') return delta.values.length;
  return 1;
}

/*
 * The shape of a delta received from another process. Structure only: the values
 * were parsed by the admin route of the process that made the change, and the
 * snapshot canonicalises (and skips) every value again anyway.
 */
const record = z.record(z.string(), z.unknown());
const DeltaSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('policy.put'), policy: record }),
  z.object({ op: z.literal('denylist.add'), entries: z.array(z.object({ value: z.string(), kind: z.enum(['email', 'domain']) })) }),
  z.object({ op: z.literal('denylist.remove'), values: z.array(z.string()) }),
  z.object({ op: z.literal('company.put'), company: record.and(z.object({ id: z.string() })) }),
  z.object({ op: z.literal('company.delete'), id: z.string() }),
  z.object({ op: z.literal('service.put'), service: record.and(z.object({ id: z.string() })) }),
  z.object({ op: z.literal('service.delete'), id: z.string() }),
]);

/** A delta from a message, or null when it is not one. */
export function parseDelta(raw: unknown): PolicyDelta | null {
  const parsed = DeltaSchema.safeParse(raw);
  return parsed.success ? (parsed.data as unknown as PolicyDelta) : null;
}
