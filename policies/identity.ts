/**
 * resolveIdentity(input) -> IdentityResolution: the ONE rule for which account an
 * external identity (Google, the AD form, the AD connector, any later source) signs
 * into, and when it may be linked to an account found by its address. Pure: the gateway
 * looks the accounts up, checks passwords and consumes mailed links, then acts on the
 * answer; the reason goes to the audit log, never to the person.
 *
 * The rules, in order, as sentences:
 *   1. A source the policy has switched off signs nobody in (AD: directorySignInAllowed).
 *   2. An identity resolves by its source's stable key first (issuer + subject; the
 *      directory's objectGUID; the connector's subject), never by its address.
 *   3. An admin or agent account is never signed into or linked from an external source,
 *      unless an admin linked that very identity from the console while signed in.
 *   4. A disabled account signs nobody in.
 *   5. No account by key: the address decides. No account has it -> register (through
 *      the registration service, with what the source proved about the address).
 *   6. A pending sign-up whose link has expired holds nothing: register in its place.
 *      A live one is taken over when the source proves the address or this browser
 *      consumed a link mailed to it; its pending password is discarded. Otherwise only
 *      the mailed link is offered: the pending password proves nothing (whoever typed
 *      it never showed they own the mailbox).
 *   7. An active account is linked only with proof given in this browser: its password,
 *      or a single-use link mailed to its address. A proven address is not proof of the
 *      account: without proof, both are offered (the mailed link alone when it has no
 *      password).
 *   8. An account already linked to another identity of the same issuer is not
 *      re-linked (the address may have been reassigned): an admin decides.
 *
 *   const resolution = resolveIdentity({ source: 'google', key, email, addressProven: proof.address, ... });
 *   switch (resolution.action) { case 'sign_in': ...; case 'refuse': audit(resolution.reason); ... }
 */
import { canonicalizeEmail } from './email.ts';

/** The external sources an identity can come from. The AD form is `directory`, its on-prem page `connector`. */
export type ExternalSource = 'google' | 'directory' | 'connector';
export const EXTERNAL_SOURCES: readonly ExternalSource[] = ['google', 'directory', 'connector'];

/** The stable key of an external identity. */
export interface IdentityKey {
  issuer: string;
  subject: string;
}

/** What the rule needs to know about an account (from the store; never its secrets). */
export interface AccountFacts {
  id: string;
  roles: readonly string[];
  status: 'pending' | 'active' | 'disabled';
  hasPassword: boolean;
  /** The identities already linked to it. */
  identities: readonly IdentityKey[];
  /**
   * For a pending account: until when its newest verification link is valid. A pending
   * account with no live link (null, or a time past `now`) holds nothing.
   */
  pendingUntil?: Date | null;
}

/** Proof this browser gave for the account found by address, in this sign-in. */
export type LinkProof = 'none' | 'password' | 'mailed_link';

export interface IdentityInput {
  source: ExternalSource;
  key: IdentityKey;
  /** The address the source asserts, raw (canonicalised here); may be absent. */
  email: unknown;
  /** proveAddress(...).address: the source proves the person controls the address. */
  addressProven: boolean;
  /** The policy lets this source sign people in (AD: directorySignInAllowed(policy); Google: true). */
  sourceAllowed: boolean;
  /** The account holding `key`, if any. */
  byKey: AccountFacts | null;
  /** True when an admin linked `key` to `byKey` from the console while signed in. */
  linkedByAdmin: boolean;
  /** The account holding the canonical address, if any. */
  byEmail: AccountFacts | null;
  /** What this browser just proved about `byEmail`: its password checked, or a link mailed to it consumed. */
  proof: LinkProof;
  now: Date;
}

export type IdentityRefusal =
  | 'source_disabled'
  | 'privileged_account'
  | 'account_disabled'
  | 'account_pending'
  | 'identity_conflict'
  | 'no_email'
  | 'invalid_email';

export type ProofOffer = 'password' | 'mailed_link';

export type IdentityResolution =
  /** Sign in to the account that holds the key. */
  | { action: 'sign_in'; reason: 'known_identity'; accountId: string }
  /** Link the key to the account found by address (proof was given in this browser), then sign in. */
  | { action: 'link'; reason: 'linked_with_password' | 'linked_with_mailed_link'; accountId: string }
  /**
   * Register through the registration service (the sign-up policy decides), the address
   * verified only when the source proved it. `replacesAccountId`: an expired pending
   * sign-up held the address; discard it first.
   */
  | { action: 'register'; reason: 'new_address' | 'pending_expired'; email: string; emailVerified: boolean; replacesAccountId?: string }
  /**
   * The pending account becomes this person's: discard its pending password and links,
   * link the key, complete its verification (the address is proven), then sign in.
   */
  | { action: 'take_over_pending'; reason: 'pending_address_proven' | 'pending_mailed_link'; accountId: string; email: string }
  /** Ask this browser for proof of the account found by address; `offer` says which. */
  | { action: 'link_requires_proof'; reason: 'existing_account' | 'pending_account'; accountId: string; offer: ProofOffer[] }
  | { action: 'refuse'; reason: IdentityRefusal };

const PRIVILEGED_ROLES: ReadonlySet<string> = new Set(['admin', 'agent']);

/** An admin or agent: never signed into or linked from an external source without an admin's console link. */
export function isPrivileged(account: Pick<AccountFacts, 'roles'>): boolean {
  return account.roles.some((role) => PRIVILEGED_ROLES.has(role));
}

/**
 * Whether a pending account still holds its address at `now`: only while its newest
 * verification link is valid. Active and disabled accounts always hold theirs.
 *
 * @example pendingHolds({ status: 'pending', pendingUntil: new Date(0) }, new Date()) // false
 */
export function pendingHolds(account: Pick<AccountFacts, 'status' | 'pendingUntil'>, now: Date): boolean {
  if (account.status !== 'pending') return true;
  const until = account.pendingUntil;
  return until instanceof Date && until.getTime() > now.getTime();
}

const refuse = (reason: IdentityRefusal): IdentityResolution => ({ action: 'refuse', reason });

function resolveByKey(input: IdentityInput, account: AccountFacts): IdentityResolution {
  if (isPrivileged(account) && !input.linkedByAdmin) return refuse('privileged_account');
  if (account.status === 'disabled') return refuse('account_disabled');
  if (account.status === 'pending') return refuse('account_pending');
  return { action: 'sign_in', reason: 'known_identity', accountId: account.id };
}

function resolvePending(input: IdentityInput, account: AccountFacts, email: string): IdentityResolution {
  if (!pendingHolds(account, input.now)) {
    return { action: 'register', reason: 'pending_expired', email, emailVerified: input.addressProven, replacesAccountId: account.id };
  }
  if (input.addressProven) return { action: 'take_over_pending', reason: 'pending_address_proven', accountId: account.id, email };
  if (input.proof === 'mailed_link') return { action: 'take_over_pending', reason: 'pending_mailed_link', accountId: account.id, email };
  return { action: 'link_requires_proof', reason: 'pending_account', accountId: account.id, offer: ['mailed_link'] };
}

function resolveActive(input: IdentityInput, account: AccountFacts): IdentityResolution {
  if (account.identities.some((identity) => identity.issuer === input.key.issuer && identity.subject !== input.key.subject)) {
    return refuse('identity_conflict');
  }
  if (input.proof === 'password' && account.hasPassword) return { action: 'link', reason: 'linked_with_password', accountId: account.id };
  if (input.proof === 'mailed_link') return { action: 'link', reason: 'linked_with_mailed_link', accountId: account.id };
  const offer: ProofOffer[] = account.hasPassword ? ['password', 'mailed_link'] : ['mailed_link'];
  return { action: 'link_requires_proof', reason: 'existing_account', accountId: account.id, offer };
}

/**
 * Decides what an external sign-in does. Pure: no I/O, the clock is `input.now`.
 *
 * @example resolveIdentity({ ...input, byKey: null, byEmail: adminAccount, proof: 'password' }) // { action: 'refuse', reason: 'privileged_account' }
 */
export function resolveIdentity(input: IdentityInput): IdentityResolution {
  if (!input.sourceAllowed) return refuse('source_disabled');
  if (input.byKey) return resolveByKey(input, input.byKey);
  if (input.email === undefined || input.email === null || (typeof input.email === 'string' && input.email.trim() === '')) return refuse('no_email');
  const canonical = canonicalizeEmail(input.email);
  if (!canonical.ok) return refuse('invalid_email');
  const account = input.byEmail;
  if (!account) return { action: 'register', reason: 'new_address', email: canonical.email, emailVerified: input.addressProven };
  if (isPrivileged(account)) return refuse('privileged_account');
  if (account.status === 'disabled') return refuse('account_disabled');
  if (account.status === 'pending') return resolvePending(input, account, canonical.email);
  return resolveActive(input, account);
}
