/**
 * Customer-access rules besides the sign-up decision: who may sign in, who may use a
 * service, whether the portal form is open, whom a customer may share requests with,
 * whether the AD styles may sign anyone in. Pure, like evaluate(): plain data in, a verdict out;
 * the gateway loads the account and the snapshot and maps verdicts to pages.
 *
 * Accounts are read through `AccountState`, the few fields a rule needs, so that this
 * module imports nothing of adapters/ (the store's Customer has them all).
 *
 *   canSignIn({ status: 'active', portalAccess: true })                     // true
 *   serviceAccessVerdict(account, { id: 'desk', requestAccess: 'anyone', name })  // { kind: 'grant', rule: 'anyone' }
 */
import type { ExternalSource } from './identity.ts';
import type { Snapshot } from './snapshot.ts';
import type { Policy, RequestAccess, Service, SharingScope } from './types.ts';

/** An account as the access rules see it. */
export interface AccountState {
  /** pending: waiting for its address to be proven; disabled: an admin turned it off. */
  status: 'pending' | 'active' | 'disabled';
  portalAccess: boolean;
  /** Ids of the services the account holds. */
  services: readonly string[];
}

/**
 * A person signs in (any path: password, Google, Active Directory) only to an active
 * account with portal access. Pending and disabled accounts, and accounts the policy
 * gave no portal access (inbound email without "grant portal access"), are refused.
 */
export function canSignIn(account: Pick<AccountState, 'status' | 'portalAccess'>): boolean {
  return account.status === 'active' && account.portalAccess !== false;
}

export type ServiceRefusal = 'service_unknown' | 'account_unavailable' | 'no_portal_access' | 'service_not_granted';

export type ServiceVerdict =
  | { kind: 'holds' }
  | { kind: 'grant'; rule: Exclude<RequestAccess, 'granted'> }
  | { kind: 'refuse'; reason: ServiceRefusal };

/**
 * Per-service request access at sign-in (Jira's "who can send requests"): a customer
 * holding the service uses it; an active customer with portal access is granted a
 * service open to `anyone` or to `existing-accounts` on first use; everyone else is
 * refused. Roles give no exemption.
 */
export function serviceAccessVerdict(account: AccountState | null, service: Pick<Service, 'id' | 'requestAccess'> | undefined): ServiceVerdict {
  if (!service) return { kind: 'refuse', reason: 'service_unknown' };
  if (!account || account.status !== 'active') return { kind: 'refuse', reason: 'account_unavailable' };
  if (account.services.includes(service.id)) return { kind: 'holds' };
  if (!account.portalAccess) return { kind: 'refuse', reason: 'no_portal_access' };
  if (service.requestAccess === 'anyone' || service.requestAccess === 'existing-accounts') {
    return { kind: 'grant', rule: service.requestAccess };
  }
  return { kind: 'refuse', reason: 'service_not_granted' };
}

/**
 * The portal's "Create an account" form is open when self-registration is `anyone`
 * with the portal method on, or `companies` with at least one company that permits
 * self-registration through the portal.
 */
export function portalSignupOpen(snapshot: Pick<Snapshot, 'policy' | 'companiesById'>): boolean {
  const policy = snapshot.policy;
  if (policy.selfRegistration === 'anyone') return policy.anyone.portal;
  if (policy.selfRegistration === 'companies') {
    for (const company of snapshot.companiesById.values()) {
      if (company.selfRegistration.permitted && company.selfRegistration.portal) return true;
    }
  }
  return false;
}

/**
 * "Create an account" on the login page of a portal bound to a service (null: no binding):
 * the form must be open (portalSignupOpen) and the account it makes must be able to use
 * that service, or the customer would sign up only to be refused at the service prompt.
 * A service open to `anyone` takes every new account; `existing-accounts` takes none
 * made now; a `granted` service only one the sign-up grants: a default service in
 * `anyone` mode, or a service of a company the new account could join (by its domain in
 * `anyone` mode with joining on; a company permitting portal sign-up in `companies` mode).
 *
 *   portalSignupOpenFor(snapshot, 'it-desk')   // false when it-desk is existing-accounts
 */
export function portalSignupOpenFor(snapshot: Pick<Snapshot, 'policy' | 'companiesById' | 'servicesById'>, serviceId: string | null): boolean {
  if (!portalSignupOpen(snapshot)) return false;
  if (serviceId === null) return true;
  const service = snapshot.servicesById.get(serviceId);
  if (!service || service.requestAccess === 'existing-accounts') return false;
  if (service.requestAccess === 'anyone') return true;
  const policy = snapshot.policy;
  const companies = [...snapshot.companiesById.values()];
  if (policy.selfRegistration === 'anyone') {
    if (policy.anyone.defaultServices.includes(serviceId)) return true;
    return policy.anyone.joinCompanyByDomain && companies.some((c) => c.services.includes(serviceId));
  }
  return companies.some((c) => c.selfRegistration.permitted && c.selfRegistration.portal && c.services.includes(serviceId));
}

/** Which searches a sharing scope allows: company members by substring, service holders by substring, a service holder by exact address. */
export interface SharingSearches {
  company: boolean;
  serviceSearch: boolean;
  serviceExactEmail: boolean;
}

/**
 * Jira's request-sharing scope, as the searches the share dialog may run:
 *   organization             members of the caller's company
 *   organization-or-email    those, plus a holder of the service whose address is typed in full
 *   project-or-organization  those, plus any holder of the service
 */
export function sharingSearches(scope: SharingScope): SharingSearches {
  switch (scope) {
    case 'organization': return { company: true, serviceSearch: false, serviceExactEmail: false };
    case 'organization-or-email': return { company: true, serviceSearch: false, serviceExactEmail: true };
    case 'project-or-organization': return { company: true, serviceSearch: true, serviceExactEmail: false };
  }
}

/** A found customer is offered as a share candidate when it is not the caller and is active. */
export function isShareCandidate(caller: { id: string }, candidate: { id: string; status: AccountState['status'] }): boolean {
  return candidate.id !== caller.id && candidate.status === 'active';
}

/**
 * "AD registration & authentication" (GoToAssist) is on: self-registration is `anyone`
 * with Active Directory ticked. It governs sign-in as well as sign-up: while it is off,
 * both AD styles (the LDAP form and the connector) refuse everyone, people who came
 * through AD earlier included (a password they set keeps working, and so does "Forgot
 * your password?"); their login buttons show only while it is on. The form also needs
 * LDAP_URL, the connector its login URL (configuration, not this rule).
 *
 * @example directorySignInAllowed({ selfRegistration: 'off', anyone: { ...anyone, activeDirectory: true } }) // false (dormant)
 */
export function directorySignInAllowed(policy: Pick<Policy, 'selfRegistration' | 'anyone'>): boolean {
  return policy.selfRegistration === 'anyone' && policy.anyone.activeDirectory === true;
}

/**
 * Whether an external source may sign anyone in at all (policies/identity.ts rule 1):
 * Google always (a new Google account still needs the sign-up policy, and an account
 * already linked keeps signing in with it), both AD styles by directorySignInAllowed.
 */
export function sourceSignInAllowed(source: ExternalSource, policy: Pick<Policy, 'selfRegistration' | 'anyone'>): boolean {
  return source === 'google' ? true : directorySignInAllowed(policy);
}

/**
 * The AD connector (the on-prem login page posting signed assertions) is on while
 * directory sign-in is allowed and a login URL is saved; the URL, or null when it is off.
 */
export function adConnectorLoginUrl(policy: Pick<Policy, 'selfRegistration' | 'anyone' | 'activeDirectory'>): string | null {
  if (!directorySignInAllowed(policy)) return null;
  return policy.activeDirectory.loginUrl ?? null;
}
