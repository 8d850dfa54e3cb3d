/**
 * The one registration service every sign-up path calls (portal form, Google, Active
 * Directory, inbound email, agent add, portal visitor, sharing invitations). Its steps,
 * named by where they run around the write (Kratos's hooks):
 *
 *   pre-write   canonicalise + evaluate (built-in rules, then plugins), then admission
 *               (policies/admission.ts: written or not, active or held pending) -> may reject
 *   write       one atomic store write: the account with its company and grants
 *               (the unique canonical email decides races: the loser gets `existing`);
 *               a pending sign-up whose links have all expired holds nothing: it is
 *               removed and the write made again, once
 *   post-write  audit event with the decision trace; then the mail the request asks
 *               for (`afterWrite`): the verification link, the notice to an existing
 *               owner, or the invite. Callers never send these themselves. Mail goes
 *               into the durable outbox; its worker sends and retries.
 *
 * A denied attempt leaves nothing but its audit event. Callers map results to pages
 * without revealing whether an account exists.
 *
 * A live pending sign-up is taken over (takeOverPending) by whoever proves the address
 * another way (Google, the directory in its own domains, an invite link): its pending
 * password and links are discarded, then it is completed like a verification.
 *
 *   const result = await registration.register({ method: 'google', email, emailVerified: true, name, identity, actor });
 *   const result = await registration.register({ method: 'email', email, emailVerified: false, actor, initialStatus: 'pending-if-unproven', afterWrite: { mail: 'invite' } });
 */
import { randomUUID } from 'node:crypto';
import { admission, pendingHolds, type Attempt, type Decision, type Hold, type SignupMethod } from '../../policies/index.ts';
import { StoreConflictError, type Customer, type Identity, type OneTimeTokenKind, type Store } from '../../adapters/store.ts';
import type { PolicyRuntime } from '../runtime/policy-runtime.ts';
import type { Logger } from '../runtime/logger.ts';
import { issueLinkToken, redeemLinkToken, type IssuedToken } from './link-tokens.ts';
import { PENDING_LINK_KINDS, pendingUntil } from './pending.ts';
import type { SignupMail } from './mail.ts';
import type { ReturnParams } from './return-to.ts';

export type { IssuedToken } from './link-tokens.ts';

/**
 * What the post-write step mails.
 *   verification  (portal form) a new account gets its verification link, an existing
 *                 pending one a new link, each bound to the password typed now: a
 *                 link activates the password chosen with it and no other (whoever
 *                 proves the mailbox gets the password they chose);
 *                 an existing active one: a notice to its owner, never a link
 *   invite        (inbound email, visitor, sharing) a new account without a password
 *                 that may sign in, or is held until its address is proven, gets an
 *                 invite link to set one; so does a live pending sign-up of the address
 *                 (the invite takes it over: gateway/signup/one-time-links.ts)
 */
export type AfterWrite = { mail: 'verification'; returnTo?: ReturnParams | null; attempt?: string } | { mail: 'invite' };

/** What the post-write step sent. */
export type Mailed = 'verification' | 'account-notice' | 'invite' | null;

export interface RegistrationRequest {
  method: SignupMethod;
  /** Raw address as given; canonicalised by the policy engine's one canonicaliser. */
  email: unknown;
  emailVerified: boolean;
  /**
   * Whether the source proves the person belongs to the address's domain (joining a
   * company by domain needs it): policies/sources.ts proveAddress. Absent = as emailVerified.
   */
  domainVerified?: boolean;
  name?: string;
  passwordHash?: string | null;
  identity?: Identity;
  adminOverride?: boolean;
  hostedDomain?: string;
  serviceId?: string;
  /** Who asks: `anonymous`, `client:<id>`, `admin:<id>`, ... (audit). */
  actor: string;
  /**
   * `pending`: create the account but hold company and grants until the address is
   * verified (portal form). `pending-if-unproven`: active, unless the policy allows the
   * address only once it is proven (joining a company), then pending (inbound email).
   * Default `active`.
   */
  initialStatus?: 'active' | 'pending' | 'pending-if-unproven';
  /** Extra audit data (ip, request id). */
  context?: Record<string, unknown>;
  /** The mail of the post-write step; none by default. */
  afterWrite?: AfterWrite;
}

/** The request's initial status, as the admission rule's hold. */
const HOLDS: Record<NonNullable<RegistrationRequest['initialStatus']>, Hold> = {
  active: 'never',
  pending: 'always',
  'pending-if-unproven': 'until-proven',
};

export type RegistrationResult =
  | { kind: 'created'; customer: Customer; decision: Decision; mailed?: Mailed }
  | { kind: 'existing'; customer: Customer; decision: Decision; mailed?: Mailed }
  | { kind: 'denied'; decision: Decision };

/** How a proven address completes an account: the path that proved it, and whether it proved the domain too. */
export interface Completion {
  /** Decide as this method (default: the method that created the account). */
  method?: SignupMethod;
  /** policies/sources.ts proveAddress(...).domain; absent = proven (a link mailed to the address). */
  domainVerified?: boolean;
}

/** Who takes a pending sign-up over, and with what. */
export interface TakeOver extends Completion {
  method: SignupMethod;
  /** The external identity that proved the address, linked to the account. */
  identity?: Identity;
  actor: string;
  context?: Record<string, unknown>;
}

type Decidable = Pick<RegistrationRequest, 'method' | 'email' | 'emailVerified' | 'domainVerified' | 'adminOverride' | 'hostedDomain' | 'serviceId'>;

export interface Registration {
  /** Decide only (simulate): no write, no audit. */
  decide(request: Decidable): Promise<Decision>;
  register(request: RegistrationRequest): Promise<RegistrationResult>;
  /**
   * Completes a pending portal registration after the address is proven: re-evaluates
   * with emailVerified true and applies company and grants, or denies (the pending
   * account is then removed) when the policy changed in between.
   */
  completeVerification(customer: Customer, actor: string, completion?: Completion): Promise<RegistrationResult>;
  /**
   * A live pending sign-up whose address another path just proved becomes that
   * person's: its pending password and its verification and invite links are discarded,
   * the identity (if any) is linked, and it is completed like a verification.
   */
  takeOverPending(customer: Customer, by: TakeOver): Promise<RegistrationResult>;
  /** A link token for this customer (gateway/signup/link-tokens.ts). */
  issueToken(kind: OneTimeTokenKind, customerId: string, ttlMs: number, data?: Record<string, unknown>): Promise<IssuedToken>;
  /** Single-use: the first caller gets the token, every later or concurrent one gets null. */
  redeemToken(kind: OneTimeTokenKind, secret: string): Promise<{ customerId: string | null; data: Record<string, unknown> } | null>;
}

export interface RegistrationDeps {
  store: Store;
  policy: PolicyRuntime;
  logger: Logger;
  /** The post-write step's mail. */
  mail: SignupMail;
}

export function createRegistration(deps: RegistrationDeps): Registration {
  const { store, policy, logger, mail } = deps;

  function attemptOf(r: Decidable): Attempt {
    const attempt: Attempt = { method: r.method, email: r.email, emailVerified: r.emailVerified === true };
    if (r.domainVerified !== undefined) attempt.domainVerified = r.domainVerified === true;
    if (r.adminOverride) attempt.adminOverride = true;
    if (r.hostedDomain) attempt.hostedDomain = r.hostedDomain;
    if (r.serviceId) attempt.serviceId = r.serviceId;
    return attempt;
  }

  async function auditDecision(r: RegistrationRequest, decision: Decision, extra: Record<string, unknown> = {}) {
    await store.audit.append({
      at: new Date(),
      actor: r.actor,
      action: 'signup.decision',
      target: decision.email ?? (typeof r.email === 'string' ? r.email.slice(0, 320) : '(invalid)'),
      // `attempt`: what the decision was made from, so it can be decided again (policy impact preview).
      data: { method: r.method, outcome: decision.outcome, reason: decision.reason, decision, attempt: recordedAttempt(r, decision), ...r.context, ...extra },
    });
  }

  /** The attempt as evaluate() saw it, with the canonical address (never the raw input). */
  function recordedAttempt(r: RegistrationRequest, decision: Decision): Record<string, unknown> {
    const attempt: Record<string, unknown> = { method: r.method, email: decision.email ?? null, emailVerified: r.emailVerified === true };
    if (r.adminOverride) attempt.adminOverride = true;
    if (r.hostedDomain) attempt.hostedDomain = r.hostedDomain;
    if (r.serviceId) attempt.serviceId = r.serviceId;
    return attempt;
  }

  function displayName(name: string | undefined, email: string): string {
    const cleaned = (name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 200);
    return cleaned || email.split('@')[0]!;
  }

  /** Post-write: the mail the request asked for, for the account it created or found. */
  async function afterWrite(r: RegistrationRequest, kind: 'created' | 'existing', customer: Customer, decision: Decision): Promise<Mailed> {
    const asked = r.afterWrite;
    if (!asked) return null;
    if (asked.mail === 'invite') {
      // A live pending sign-up of the address (someone typed it into the portal form):
      // the invite goes to the address, and whoever follows it takes the account over.
      if (kind === 'existing' && customer.status === 'pending') {
        await mail.invite(customer);
        return 'invite';
      }
      const wantsLink = customer.portalAccess || customer.status === 'pending' || decision.verificationPending === true;
      if (kind !== 'created' || !wantsLink || customer.passwordHash) return null;
      await mail.invite(customer);
      return 'invite';
    }
    if (kind === 'created' || customer.status === 'pending') {
      // Not verified yet: this link, and only this one, activates the password typed now.
      const name = kind === 'created' ? customer.name : displayName(r.name, customer.email);
      const bind = r.passwordHash ? { bind: { passwordHash: r.passwordHash, name, ...(asked.attempt ? { attempt: asked.attempt } : {}) } } : {};
      await mail.verification(customer, { ...bind, returnTo: asked.returnTo });
      return 'verification';
    }
    await mail.accountExists(customer);
    return 'account-notice';
  }

  /**
   * A pending sign-up whose verification and invite links have all expired holds its
   * address no longer: it is removed (with its links) so the address can be written
   * again. True when it was removed.
   */
  async function releaseExpiredPending(existing: Customer, r: RegistrationRequest): Promise<boolean> {
    const now = new Date();
    if (existing.status !== 'pending' || pendingHolds({ status: 'pending', pendingUntil: await pendingUntil(store, existing.id, now) }, now)) return false;
    // Read again just before the delete: still the same pending sign-up, still expired.
    const again = await store.customers.get(existing.id);
    if (!again || again.status !== 'pending' || again.updatedAt.getTime() !== existing.updatedAt.getTime()) return false;
    await store.customers.delete(existing.id);
    await Promise.all(PENDING_LINK_KINDS.map((kind) => store.tokens.revokeFor(kind, existing.id)));
    await store.audit.append({ at: now, actor: r.actor, action: 'signup.pending_expired', target: existing.id, data: { email: existing.email, method: r.method, ...r.context } });
    return true;
  }

  async function completeVerification(customer: Customer, actor: string, completion: Completion = {}): Promise<RegistrationResult> {
    const method = completion.method ?? (customer.createdVia === 'bootstrap' ? 'agent' : customer.createdVia);
    const request: RegistrationRequest = { method, email: customer.email, emailVerified: true, actor };
    if (completion.domainVerified !== undefined) request.domainVerified = completion.domainVerified;
    const decision = await policy.decide(attemptOf(request));
    await auditDecision(request, decision, { customerId: customer.id, verification: true });
    if (decision.outcome !== 'allow') {
      // The policy changed since sign-up: the pending account must not linger.
      if (customer.status === 'pending') await store.customers.delete(customer.id);
      return { kind: 'denied', decision };
    }
    const updated = await store.customers.update(customer.id, {
      status: customer.status === 'disabled' ? 'disabled' : 'active',
      emailVerified: true,
      companyId: decision.companyId ?? null,
      services: [...new Set([...customer.services, ...decision.services])],
      portalAccess: decision.portalAccess,
    });
    if (!updated) return { kind: 'denied', decision };
    return { kind: 'created', customer: updated, decision };
  }

  return {
    decide: (r) => policy.decide(attemptOf(r)),

    async register(r) {
      const decision = await policy.decide(attemptOf(r));
      // Whether and how the account is written: the pending-until-proven rule (policies/admission.ts).
      const admitted = admission(decision, HOLDS[r.initialStatus ?? 'active']);
      if (!admitted.admit) {
        await auditDecision(r, decision);
        return { kind: 'denied', decision };
      }
      const now = new Date();
      const customer: Omit<Customer, 'createdAt' | 'updatedAt'> = {
        id: randomUUID(),
        email: admitted.email,
        emailVerified: r.emailVerified === true || r.method === 'agent',
        name: displayName(r.name, admitted.email),
        passwordHash: r.passwordHash ?? null,
        status: admitted.status,
        roles: [],
        companyId: admitted.companyId,
        services: admitted.services,
        portalAccess: admitted.portalAccess,
        identities: r.identity ? [r.identity] : [],
        createdVia: r.method,
      };
      const write = async () => {
        const created = await store.customers.create({ ...customer, createdAt: now });
        await auditDecision(r, decision, { customerId: created.id, created: true });
        return { kind: 'created' as const, customer: created, decision, mailed: await afterWrite(r, 'created', created, decision) };
      };
      try {
        return await write();
      } catch (err) {
        if (err instanceof StoreConflictError && err.code === 'email_taken') {
          let existing = await store.customers.findByEmail(admitted.email);
          if (existing && (await releaseExpiredPending(existing, r))) {
            try {
              return await write();
            } catch (again) {
              if (!(again instanceof StoreConflictError && again.code === 'email_taken')) throw again;
              existing = await store.customers.findByEmail(admitted.email);
            }
          }
          if (existing) {
            await auditDecision(r, decision, { customerId: existing.id, existing: true });
            return { kind: 'existing', customer: existing, decision, mailed: await afterWrite(r, 'existing', existing, decision) };
          }
        }
        if (err instanceof StoreConflictError && err.code === 'identity_taken' && r.identity) {
          const holder = await store.customers.findByIdentity(r.identity.issuer, r.identity.subject);
          if (holder) {
            await auditDecision(r, decision, { customerId: holder.id, existing: true });
            return { kind: 'existing', customer: holder, decision, mailed: await afterWrite(r, 'existing', holder, decision) };
          }
        }
        logger.error({ err, method: r.method }, 'registration write failed');
        throw err;
      }
    },

    completeVerification,

    async takeOverPending(customer, by) {
      await store.customers.update(customer.id, { passwordHash: null });
      await Promise.all(PENDING_LINK_KINDS.map((kind) => store.tokens.revokeFor(kind, customer.id)));
      let current: Customer | null = { ...customer, passwordHash: null };
      if (by.identity) current = await store.customers.linkIdentity(customer.id, by.identity);
      if (!current) return { kind: 'denied', decision: await policy.decide(attemptOf({ method: by.method, email: customer.email, emailVerified: true })) };
      await store.audit.append({
        at: new Date(),
        actor: by.actor,
        action: 'signup.pending_taken_over',
        target: customer.id,
        data: { method: by.method, ...(by.identity ? { issuer: by.identity.issuer, subject: by.identity.subject } : {}), ...by.context },
      });
      const completion: Completion = { method: by.method };
      if (by.domainVerified !== undefined) completion.domainVerified = by.domainVerified;
      return completeVerification(current, by.actor, completion);
    },

    issueToken: (kind, customerId, ttlMs, data = {}) => issueLinkToken(store, kind, customerId, ttlMs, data),
    redeemToken: (kind, secret) => redeemLinkToken(store, kind, secret),
  };
}
