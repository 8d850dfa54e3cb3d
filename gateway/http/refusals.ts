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

/** A row: the status and the text per path; `any` is the text for a path the row does not name. */
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
  any: 'Your sign-up was not accepted. Contact the service desk.',
  portal: "We can't create an account for this address. Contact support.",
  google: 'An account cannot be created for this address. Contact the support team if you think this is a mistake.',
};

const GOOGLE_NO_NEW_ACCOUNTS = 'New accounts cannot be created with Google here. If you already have an account, sign in with your email and password.';
const AD_NO_NEW_ACCOUNTS = 'Creating an account with Windows / Active Directory is not available here. Ask the service desk to add you, or sign in another way.';

/** Codes with their own words. Anything else reads as GENERIC. */
const REFUSALS: Partial<Record<RefusalCode, Row>> = {
  registration_disabled: {
    status: 403,
    any: 'Creating an account here is turned off. Ask your support team to add you.',
    google: GOOGLE_NO_NEW_ACCOUNTS,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  method_disabled: {
    status: 403,
    any: 'Creating an account this way is turned off. Ask your support team to add you.',
    portal: 'Creating an account with this form is turned off. Ask your support team to add you, or use another way to sign in.',
    google: GOOGLE_NO_NEW_ACCOUNTS,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  domain_not_accepted: {
    status: 403,
    any: 'Accounts for this email domain cannot be created here. Ask your organisation or the support team for access.',
    portal: "Only people from our customers' companies can create an account here, and this address is not from one of them. Ask your support team to add you.",
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  company_method_disabled: {
    status: 403,
    any: 'Your company does not allow creating an account this way. Ask your support team to add you.',
    portal: 'Your company does not allow creating an account with this form. Ask your support team to add you.',
    google: GOOGLE_NO_NEW_ACCOUNTS,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  domain_unverified: {
    status: 403,
    any: 'Accounts for this email domain cannot be created this way here. Ask your organisation or the support team for access.',
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  source_disabled: {
    status: 403,
    any: 'This way of signing in is not available here. Sign in another way.',
    activeDirectory: 'Signing in with Windows / Active Directory is not available here. Sign in another way, or ask the service desk.',
  },
  email_unverified: {
    status: 403,
    any: 'This email address must be verified before an account can be created.',
    portal: GENERIC.portal,
    activeDirectory: AD_NO_NEW_ACCOUNTS,
  },
  invalid_email: {
    status: 403,
    any: 'This email address cannot be used here.',
    portal: GENERIC.portal,
    google: 'Google returned an email address that cannot be used here.',
    activeDirectory: 'The email address in your directory account cannot be used. Ask your IT administrator to correct it, then try again.',
  },
  no_email: {
    status: 403,
    any: 'Your directory account has no email address, so no account can be created for it. Ask your IT administrator to add one, then try again.',
  },
  account_pending: {
    status: 403,
    any: 'An account with this email address is waiting for its email verification. Open the link we sent, then sign in again.',
  },
  account_unavailable: {
    status: 403,
    any: 'This account cannot sign in. Contact the support team.',
    activeDirectory: 'This account cannot sign in. Contact the service desk.',
    service: 'Your account cannot be used to sign in right now.',
  },
  identity_conflict: {
    status: 409,
    any: 'The account with this email address is linked to another directory user. Contact the service desk.',
    google: 'The account with this email address is linked to another Google account. Contact the support team.',
  },
  identity_taken: {
    status: 409,
    any: 'This Google account is already linked to another account.',
  },
  service_not_granted: {
    status: 403,
    any: 'Your account has not been given access to this service. Ask your support team or administrator to add you.',
  },
  no_portal_access: {
    status: 403,
    any: 'Your account does not have access to the support portal.',
  },
  service_unknown: {
    status: 403,
    any: 'This application is not set up correctly. Contact your support team.',
  },
  google_email_missing: {
    status: 403,
    any: 'Google did not share an email address for this account, so it cannot be used here.',
  },
  google_email_unverified: {
    status: 403,
    any: "This Google account's email address is not verified. Verify it with Google, then try again.",
  },
  google_hosted_domain_mismatch: {
    status: 403,
    any: "Only accounts of the organisation's Google Workspace domain can sign in here.",
  },
  google_cancelled: {
    status: 401,
    any: 'Google sign-in did not complete.',
  },
};

/** The page for `code` on `path`. Denylist, plugin, privileged-account and unknown codes get the generic refusal. */
export function refusal(code: string, path: RefusalPath): Refusal {
  const row = Object.hasOwn(REFUSALS, code) ? REFUSALS[code as RefusalCode] : undefined;
  if (!row) return { status: GENERIC.status, message: GENERIC[path] ?? GENERIC.any };
  return { status: row.status, message: row[path] ?? row.any };
}
