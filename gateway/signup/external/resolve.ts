/**
 * The one identity-resolution entry point of every external source (Google, the AD
 * form, the AD connector, any later one): it looks up what policies/identity.ts
 * resolveIdentity() needs, asks it, and does what it answers.
 *
 *   sign_in             the account holding the source's stable key (found by a former
 *                       key, it is re-keyed first)
 *   link                proof was given in this browser: the key is linked (linkedBy
 *                       `customer:<id>`), then sign in
 *   register            THE registration service, the address verified and its domain
 *                       proven only as far as the source proves them (policies/sources.ts)
 *   take_over_pending   registration.takeOverPending: the pending password and links are
 *                       discarded, the key linked, the account completed
 *   link_requires_proof the caller asks this browser for the account's password or sends
 *                       a single-use link to its address (link.ts), then calls again
 *   refuse              audited with the reason (`identity.refused`); the person reads
 *                       the path's refusal, never the reason
 *
 *   const outcome = await resolveExternal(ctx, person, { proof: 'none' }, { ip, requestId });
 */
import {
  canonicalizeEmail, canSignIn, proveAddress, resolveIdentity, sourceSignInAllowed,
  type AccountFacts, type DecisionReason, type IdentityRefusal, type LinkProof, type ProofOffer,
} from '../../../policies/index.ts';
import { StoreConflictError, type Customer, type Identity } from '../../../adapters/store.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { pendingUntil } from '../pending.ts';
import { claimsOf, methodOf, type ExternalPerson } from './person.ts';

/** Why an external sign-in was refused: the identity rule's reason, the policy's, or an account that cannot sign in. */
export type ExternalRefusal = Exclude<IdentityRefusal, 'account_disabled'> | DecisionReason | 'account_unavailable';

export type ExternalOutcome =
  | { kind: 'sign_in'; customer: Customer; how: 'identity' | 'registration' | 'link' | 'take_over'; proof: LinkProof }
  /** The account found by address needs proof from this browser: `offer` says which. */
  | { kind: 'prove'; accountId: string; email: string; offer: ProofOffer[] }
  | { kind: 'refuse'; reason: ExternalRefusal };

/** What this browser proved about an account, and which account (a mailed link names the one it was sent for). */
export interface GivenProof {
  proof: LinkProof;
  accountId?: string;
}

export type ResolveDeps = Pick<GatewayContext, 'store' | 'policy' | 'registration' | 'audit'>;

const sameKey = (a: Pick<Identity, 'issuer' | 'subject'>, b: Pick<Identity, 'issuer' | 'subject'>) => a.issuer === b.issuer && a.subject === b.subject;

async function factsOf(deps: ResolveDeps, customer: Customer, now: Date): Promise<AccountFacts> {
  return {
    id: customer.id,
    roles: customer.roles,
    status: customer.status,
    hasPassword: customer.passwordHash !== null,
    identities: customer.identities,
    pendingUntil: customer.status === 'pending' ? await pendingUntil(deps.store, customer.id, now) : null,
  };
}

/**
 * The account holding the person's key; one found by a former key of the same issuer
 * (the directory's DN before objectGUID) gets the current key too, linked the way the
 * former one was, and is returned.
 */
async function holderOf(deps: ResolveDeps, person: ExternalPerson): Promise<Customer | null> {
  const holder = await deps.store.customers.findByIdentity(person.issuer, person.subject);
  if (holder) return holder;
  for (const former of person.formerSubjects) {
    const old = await deps.store.customers.findByIdentity(person.issuer, former);
    if (!old) continue;
    const was = old.identities.find((i) => sameKey(i, { issuer: person.issuer, subject: former }));
    const rekeyed = await deps.store.customers.linkIdentity(old.id, { issuer: person.issuer, subject: person.subject, ...(was?.linkedBy ? { linkedBy: was.linkedBy } : {}) });
    await deps.audit('identity.rekeyed', { actor: 'system', target: old.id, data: { issuer: person.issuer, from: former, to: person.subject } });
    return rekeyed;
  }
  return null;
}

/** An admin linked this very key to the account from the console. */
function linkedByAdmin(customer: Customer, person: ExternalPerson): boolean {
  return customer.identities.some((i) => sameKey(i, person) && typeof i.linkedBy === 'string' && i.linkedBy.startsWith('admin:'));
}

export async function resolveExternal(deps: ResolveDeps, person: ExternalPerson, given: GivenProof, context: Record<string, unknown>): Promise<ExternalOutcome> {
  const refuse = async (reason: ExternalRefusal, extra: Record<string, unknown> = {}): Promise<ExternalOutcome> => {
    await deps.audit('identity.refused', {
      actor: 'anonymous',
      target: typeof extra.accountId === 'string' ? extra.accountId : person.email.slice(0, 320),
      data: { source: person.source, reason, issuer: person.issuer, subject: person.subject, via: person.via, ...extra, ...context },
    });
    return { kind: 'refuse', reason };
  };
  const usable = (customer: Customer, how: Extract<ExternalOutcome, { kind: 'sign_in' }>['how']): Promise<ExternalOutcome> | ExternalOutcome =>
    canSignIn(customer) ? { kind: 'sign_in', customer, how, proof: given.proof } : refuse('account_unavailable', { accountId: customer.id });

  // Two rounds at most: a concurrent sign-up can take the address between the look-up and the write.
  for (let round = 0; round < 2; round += 1) {
    const now = new Date();
    const policy = deps.policy.current().policy;
    const proof = proveAddress(claimsOf(person), policy);
    const byKey = await holderOf(deps, person);
    const canonical = byKey ? null : canonicalizeEmail(person.email);
    const byEmail = canonical?.ok ? await deps.store.customers.findByEmail(canonical.email) : null;
    // A mailed link proves the account it was sent for, and no other.
    const proofFor = given.proof === 'mailed_link' && given.accountId !== byEmail?.id ? 'none' : given.proof;
    const resolution = resolveIdentity({
      source: person.source,
      key: { issuer: person.issuer, subject: person.subject },
      email: person.email,
      addressProven: proof.address,
      sourceAllowed: sourceSignInAllowed(person.source, policy),
      byKey: byKey ? await factsOf(deps, byKey, now) : null,
      linkedByAdmin: byKey ? linkedByAdmin(byKey, person) : false,
      byEmail: byEmail ? await factsOf(deps, byEmail, now) : null,
      proof: proofFor,
      now,
    });

    switch (resolution.action) {
      case 'refuse':
        return refuse(resolution.reason === 'account_disabled' ? 'account_unavailable' : resolution.reason, {
          identityReason: resolution.reason,
          ...(byKey ?? byEmail ? { accountId: (byKey ?? byEmail)!.id } : {}),
        });

      case 'sign_in':
        return usable(byKey!, 'identity');

      case 'link_requires_proof':
        // An account that could not sign in even once linked is not worth the proof.
        if (byEmail && byEmail.status === 'active' && !canSignIn(byEmail)) return refuse('account_unavailable', { accountId: byEmail.id });
        return { kind: 'prove', accountId: resolution.accountId, email: byEmail!.email, offer: resolution.offer };

      case 'link': {
        let linked: Customer | null;
        try {
          linked = await deps.store.customers.linkIdentity(resolution.accountId, { issuer: person.issuer, subject: person.subject, linkedBy: `customer:${resolution.accountId}` });
        } catch (err) {
          if (err instanceof StoreConflictError && err.code === 'identity_taken') continue; // linked elsewhere meanwhile: resolve again
          throw err;
        }
        if (!linked) continue;
        await deps.audit('identity.link', {
          actor: `customer:${linked.id}`,
          target: linked.id,
          data: { source: person.source, issuer: person.issuer, subject: person.subject, proof: proofFor, via: person.via, ...context },
        });
        return usable(linked, 'link');
      }

      case 'take_over_pending': {
        let taken;
        try {
          taken = await deps.registration.takeOverPending(byEmail!, {
            method: methodOf(person.source),
            // A link mailed to the address proves it, domain included; the source proves what it proves.
            ...(resolution.reason === 'pending_address_proven' ? { domainVerified: proof.domain } : {}),
            identity: { issuer: person.issuer, subject: person.subject },
            actor: 'anonymous',
            context: { ...context, via: person.via, proof: resolution.reason },
          });
        } catch (err) {
          if (err instanceof StoreConflictError && err.code === 'identity_taken') continue;
          throw err;
        }
        if (taken.kind === 'denied') return refuse(taken.decision.reason);
        return usable(taken.customer, 'take_over');
      }

      case 'register': {
        const result = await deps.registration.register({
          method: methodOf(person.source),
          email: person.email,
          emailVerified: proof.address,
          domainVerified: proof.domain,
          name: person.name,
          identity: { issuer: person.issuer, subject: person.subject },
          ...(person.hostedDomain ? { hostedDomain: person.hostedDomain } : {}),
          actor: 'anonymous',
          context: { ...context, via: person.via, proof: proof.trace[0]?.detail },
        });
        if (result.kind === 'denied') return { kind: 'refuse', reason: result.decision.reason };
        if (result.kind === 'created') return usable(result.customer, 'registration');
        continue; // someone else wrote the address or the key meanwhile: resolve again
      }
    }
  }
  return refuse('identity_conflict');
}
