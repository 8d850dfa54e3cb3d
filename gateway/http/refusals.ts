/**
 * What a person reads when a customer-side path refuses them: ONE table from a stable
 * reason code (a policy DecisionReason, a service-access refusal, an account or identity
 * state, a Google claims check) to the HTTP status and the text, worded for the path
 * that asks (the portal form, Google, Active Directory, the per-service prompt).
 *
 *   const page = refusal(result.decision.reason, 'google');   // { status: 403, message: 'New accounts ...' }
 *
 * The customer side never sees a reason code, and never learns which rule refused: no
 * page or customer API shows the code (pages show the request id as a reference for the
 * service desk), a denylist match (address or domain), a deployer's plugin, an admin or
 * agent account out of an external source's reach and any code this table does not know
 * all read as the path's generic refusal. The audit log keeps the real reason. What the
 * person can act on (sign-up turned off for this way in, an address that must be
 * verified) is said plainly.
 */
import type { DecisionReason, ServiceRefusal } from '../../policies/index.ts';
import { currentTranslator } from './i18n.ts';

export type RefusalPath = 'portal' | 'google' | 'activeDirectory' | 'service';

export type RefusalCode =
  | DecisionReason
  | ServiceRefusal
  /** The directory entry or assertion carries no address. */
  | 'no_email'
  /** An account with the address waits for its verification link. */
  | 'account_pending'
  /** The external identity is linked to another account already. */
  | 'identity_conflict'
  | 'identity_taken'
  /** The policy lets this source sign nobody in ("AD registration & authentication" off). */
  | 'source_disabled'
  | 'google_email_missing'
  | 'google_email_unverified'
  | 'google_hosted_domain_mismatch'
  | 'google_cancelled';

export interface Refusal {
  status: number;
  message: string;
}

/** A row: the status and the text (a message key of views/locales/) per path; `any` is the text for a path the row does not name. */
interface Row {
  status: number;
  any: string;
  portal?: string;
  google?: string;
  activeDirectory?: string;
  service?: string;
}

const GENERIC: Row = {
  status: 403,
  any: 'refusal.generic',
  portal: 'refusal.generic.portal',
  google: 'refusal.generic.google',
};

const GOOGLE_NO_NEW_ACCOUNTS = 'refusal.googleNoNewAccounts';
const AD_NO_NEW_ACCOUNTS = 'refusal.adNoNewAccounts';

/** Codes with their own words. Anything else reads as GENERIC. */
const REFUSALS: Partial<Record<RefusalCode, Row>> = {
  registration_disabled: {
    status: 403,
    any: 'refusal.registration_disabled',
    google: GOOGLE_NO_NEW_ACCOUNTS,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  method_disabled: {
    status: 403,
    any: 'refusal.method_disabled',
    portal: 'refusal.method_disabled.portal',
    google: GOOGLE_NO_NEW_ACCOUNTS,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  domain_not_accepted: {
    status: 403,
    any: 'refusal.domain_not_accepted',
    portal: 'refusal.domain_not_accepted.portal',
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  company_method_disabled: {
    status: 403,
    any: 'refusal.company_method_disabled',
    portal: 'refusal.company_method_disabled.portal',
    google: GOOGLE_NO_NEW_ACCOUNTS,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  domain_unverified: {
    status: 403,
    any: 'refusal.domain_unverified',
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  source_disabled: {
    status: 403,
    any: 'refusal.source_disabled',
    activeDirectory: 'refusal.source_disabled.activeDirectory',
  },
  email_unverified: {
    status: 403,
    any: 'refusal.email_unverified',
    portal: GENERIC.portal,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  invalid_email: {
    status: 403,
    any: 'refusal.invalid_email',
    portal: GENERIC.portal,
    google: 'refusal.invalid_email.google',
    activeDirectory: 'refusal.invalid_email.activeDirectory',
  },
  no_email: {
    status: 403,
    any: 'refusal.no_email',
  },
  account_pending: {
    status: 403,
    any: 'refusal.account_pending',
  },
  account_unavailable: {
    status: 403,
    any: 'refusal.account_unavailable',
    activeDirectory: 'refusal.account_unavailable.activeDirectory',
    service: 'refusal.account_unavailable.service',
  },
  identity_conflict: {
    status: 409,
    any: 'refusal.identity_conflict',
    google: 'refusal.identity_conflict.google',
  },
  identity_taken: {
    status: 409,
    any: 'refusal.identity_taken',
  },
  service_not_granted: {
    status: 403,
    any: 'refusal.service_not_granted',
  },
  no_portal_access: {
    status: 403,
    any: 'refusal.no_portal_access',
  },
  service_unknown: {
    status: 403,
    any: 'refusal.service_unknown',
  },
  google_email_missing: {
    status: 403,
    any: 'refusal.google_email_missing',
  },
  google_email_unverified: {
    status: 403,
    any: 'refusal.google_email_unverified',
  },
  google_hosted_domain_mismatch: {
    status: 403,
    any: 'refusal.google_hosted_domain_mismatch',
  },
  google_cancelled: {
    status: 401,
    any: 'refusal.google_cancelled',
  },
};

/** The page for `code` on `path`, in the request's language. Denylist, plugin, privileged-account and unknown codes get the generic refusal. */
export function refusal(code: string, path: RefusalPath): Refusal {
  const { t } = currentTranslator();
  const row = Object.hasOwn(REFUSALS, code) ? REFUSALS[code as RefusalCode] : undefined;
  if (!row) return { status: GENERIC.status, message: t(GENERIC[path] ?? GENERIC.any) };
  return { status: row.status, message: t(row[path] ?? row.any) };
}
