/**
 * Plain data shapes of the customer-access model (DESIGN.md, "The policy").
 *
 * These are the types every layer shares: adapters store them, gateway routes
 * read and write them, and `evaluate()` decides from a compiled snapshot of them.
 * The zod schemas in `policies/schema.ts` parse admin input into exactly these
 * shapes (canonicalised); nothing else should construct them from raw input.
 */

export type SelfRegistrationMode = 'off' | 'anyone' | 'companies';

/** Ways of becoming a customer. `agent` = an agent or admin adds someone by hand. */
export type SignupMethod = 'portal' | 'google' | 'email' | 'activeDirectory' | 'agent';
export const SIGNUP_METHODS: readonly SignupMethod[] = ['portal', 'google', 'email', 'activeDirectory', 'agent'];

export type PortalAccessMode = 'public' | 'registered';
export type SharingScope = 'organization' | 'organization-or-email' | 'project-or-organization';
export type RequestAccess = 'granted' | 'anyone' | 'existing-accounts';

export interface Policy {
  selfRegistration: SelfRegistrationMode;
  anyone: {
    portal: boolean;
    google: boolean;
    email: boolean;
    grantPortalAccess: boolean;
    activeDirectory: boolean;
    joinCompanyByDomain: boolean;
    defaultServices: string[];
  };
  activeDirectory: {
    loginUrl: string | null;
    /**
     * The directory's own domains (canonical): the AD form and the connector prove an
     * address only inside them (subdomains included); any other address they assert
     * counts as unverified (policies/sources.ts).
     */
    provenDomains: string[];
  };
  portal: {
    access: PortalAccessMode;
    companyRequestsVisible: boolean;
    sharing: SharingScope;
  };
  /** Optimistic-concurrency counter; the store bumps it on every save. */
  version: number;
}

export interface Company {
  id: string;
  name: string;
  /** Canonical (lowercase, punycode, no trailing dot) domains, each claimed by one company only. */
  acceptedDomains: string[];
  /** When true (the default) an accepted domain also matches its subdomains at a label boundary. */
  allowSubdomains: boolean;
  selfRegistration: {
    permitted: boolean;
    portal: boolean;
    email: boolean;
    grantPortalAccess: boolean;
  };
  services: string[];
}

export interface Service {
  id: string;
  name: string;
  requestAccess: RequestAccess;
}

export type DenylistKind = 'email' | 'domain';

export interface DenylistEntry {
  /** Canonical address or canonical domain. */
  value: string;
  kind: DenylistKind;
  createdAt: Date;
  createdBy: string;
  note?: string;
}

/** The policy that holds on a fresh install: nobody self-registers until an admin says so. */
export const DEFAULT_POLICY: Policy = {
  selfRegistration: 'off',
  anyone: {
    portal: true,
    google: true,
    email: true,
    grantPortalAccess: true,
    activeDirectory: false,
    joinCompanyByDomain: true,
    defaultServices: [],
  },
  activeDirectory: { loginUrl: null, provenDomains: [] },
  portal: { access: 'registered', companyRequestsVisible: false, sharing: 'organization' },
  version: 0,
};

// ---------------------------------------------------------------------------
// Evaluation and parsing shapes (added with the policy engine, policies/*.ts).
// ---------------------------------------------------------------------------

/** One sign-up attempt as the paths describe it; `email` is raw and untrusted. */
export interface Attempt {
  method: SignupMethod;
  /** Raw input: evaluate() canonicalises it itself (non-strings are refused). */
  email: unknown;
  /** True only when the address is proven (verification link, IdP assertion). */
  emailVerified: boolean;
  /**
   * Whether the person is proven to belong to the address's domain, which joining a
   * company by domain needs. Absent = the same as emailVerified. A personal Google
   * account on a work address proves the address but not the domain (policies/sources.ts).
   */
  domainVerified?: boolean;
  /** Only meaningful for `agent`: an admin explicitly overrides the denylist. */
  adminOverride?: boolean;
  /** Informational for now (Google `hd` claim): recorded in the trace. */
  hostedDomain?: string;
  /** Informational for now (the client's bound service): recorded in the trace. */
  serviceId?: string;
}

export type DecisionReason =
  | 'invalid_email'
  | 'registration_disabled'
  | 'method_disabled'
  | 'denylisted_email'
  | 'denylisted_domain'
  | 'domain_not_accepted'
  | 'company_method_disabled'
  | 'email_unverified'
  | 'domain_unverified'
  | `plugin:${string}`
  | 'allowed_anyone'
  | 'allowed_company'
  | 'allowed_agent'
  | 'admin_override';

export interface TraceEntry {
  rule: string;
  result: 'pass' | 'fail' | 'info';
  detail?: string;
}

export interface Decision {
  outcome: 'allow' | 'deny';
  reason: DecisionReason;
  /** Canonical address, present whenever the input was a valid address. */
  email?: string;
  companyId?: string;
  services: string[];
  portalAccess: boolean;
  /** The path should send a verification link and re-evaluate with emailVerified true. */
  verificationPending?: boolean;
  trace: TraceEntry[];
}

/** One problem found while parsing admin input or checking a configuration. */
export interface PolicyIssue {
  path: (string | number)[];
  code: string;
  message: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: PolicyIssue[] };

/** What a denylist parser produces; the route adds createdAt/createdBy/note. */
export type DenylistValue = Pick<DenylistEntry, 'value' | 'kind'> & { note?: string };

export type PluginVerdict = { deny?: boolean; addServices?: string[]; note?: string } | void;

/** A deployer's extra check, run after the built-in rules on allowed decisions only. */
export interface PolicyPlugin {
  name: string;
  check(attempt: Readonly<Attempt>, decision: Readonly<Decision>): Promise<PluginVerdict> | PluginVerdict;
}
