/**
 * The one identity-resolution entry point of both Active Directory styles: a person the
 * directory proved (a successful bind, or a valid signed assertion) becomes an account.
 *
 *   known identity        sign in to the account holding it
 *   same address          link the identity to that account (the directory proving the
 *                         person is the proof the link needs) and audit it
 *   anyone else           THE registration service, method `activeDirectory` (the
 *                         policy decides: AD registration exists only in `anyone` mode
 *                         with `anyone.activeDirectory` on)
 *
 *   const outcome = await resolveDirectoryPerson(ctx, { identity, email, name, proof: 'directory_bind' }, { ip });
 *   if (!outcome.ok) renderRefusal(c, uid, outcome.reason);
 */
import { canonicalizeEmail, canSignIn, type DecisionReason } from '../../../policies/index.ts';
import { StoreConflictError, type Customer, type Identity } from '../../../adapters/store.ts';
import type { GatewayContext } from '../../runtime/context.ts';

export interface DirectoryPerson {
  identity: Identity;
  /** The directory's mail attribute / the assertion's email, raw ('' when absent). */
  email: string;
  name: string | undefined;
  /** How the directory proved the person (audit). */
  proof: 'directory_bind' | 'signed_assertion';
}

export type AdRefusal = DecisionReason | 'no_email' | 'account_unavailable' | 'account_pending' | 'identity_conflict';

export type PersonOutcome = { ok: true; customer: Customer; created: boolean; linked: boolean } | { ok: false; reason: AdRefusal };

type PersonDeps = Pick<GatewayContext, 'store' | 'registration' | 'audit'>;

const sameIdentity = (a: Identity, b: Identity) => a.issuer === b.issuer && a.subject === b.subject;

/** Known identity -> sign in; same address -> link; else register through the policy. */
export async function resolveDirectoryPerson(deps: PersonDeps, person: DirectoryPerson, context: Record<string, unknown>): Promise<PersonOutcome> {
  const known = await deps.store.customers.findByIdentity(person.identity.issuer, person.identity.subject);
  if (known) return usable(known, false, false);
  if (person.email.trim() === '') return { ok: false, reason: 'no_email' };
  const canonical = canonicalizeEmail(person.email);
  if (!canonical.ok) return { ok: false, reason: 'invalid_email' };
  const sameAddress = await deps.store.customers.findByEmail(canonical.email);
  if (sameAddress) return linkExisting(deps, sameAddress, person);

  const result = await deps.registration.register({
    method: 'activeDirectory',
    email: person.email,
    emailVerified: true, // the directory asserts the address
    name: person.name,
    identity: person.identity,
    actor: 'anonymous',
    context: { ...context, proof: person.proof },
  });
  if (result.kind === 'created') return usable(result.customer, true, false);
  if (result.kind === 'denied') return { ok: false, reason: result.decision.reason };
  // Lost a race with a concurrent sign-up: the winner holds the identity or the address.
  if (result.customer.identities.some((i) => sameIdentity(i, person.identity))) return usable(result.customer, false, false);
  return linkExisting(deps, result.customer, person);
}

function usable(customer: Customer, created: boolean, linked: boolean): PersonOutcome {
  if (canSignIn(customer)) return { ok: true, customer, created, linked };
  return { ok: false, reason: customer.status === 'pending' ? 'account_pending' : 'account_unavailable' };
}

/**
 * Links the directory identity to an account that already has this address. Called only
 * after the directory proved the person (successful bind / valid assertion). An account
 * already linked to ANOTHER entry of the same directory is not re-linked (the address
 * may have been reassigned): the person is refused and an admin decides.
 */
async function linkExisting(deps: PersonDeps, customer: Customer, person: DirectoryPerson): Promise<PersonOutcome> {
  if (customer.status !== 'active') return usable(customer, false, false);
  if (customer.identities.some((i) => i.issuer === person.identity.issuer)) {
    await deps.audit('customer.identity_conflict', { actor: 'anonymous', target: customer.id, data: { issuer: person.identity.issuer, subject: person.identity.subject } });
    return { ok: false, reason: 'identity_conflict' };
  }
  let linked: Customer | null;
  try {
    linked = await deps.store.customers.linkIdentity(customer.id, person.identity);
  } catch (err) {
    if (err instanceof StoreConflictError && err.code === 'identity_taken') {
      const holder = await deps.store.customers.findByIdentity(person.identity.issuer, person.identity.subject);
      return holder ? usable(holder, false, false) : { ok: false, reason: 'identity_conflict' };
    }
    throw err;
  }
  if (!linked) return { ok: false, reason: 'account_unavailable' };
  await deps.audit('customer.identity_linked', {
    actor: `customer:${customer.id}`,
    target: customer.id,
    data: { issuer: person.identity.issuer, subject: person.identity.subject, proof: person.proof },
  });
  return usable(linked, false, true);
}
