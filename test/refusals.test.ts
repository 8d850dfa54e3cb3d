/**
 * The one reason -> page table (gateway/http/refusals.ts): every refusal a customer path
 * can meet has a status and a text on every path, and the customer side never learns
 * which rule refused when that rule is the denylist or a deployer's plugin.
 */
import test from 'ava';
import { refusal, type RefusalPath } from '../gateway/http/refusals.ts';

const PATHS: RefusalPath[] = ['portal', 'google', 'activeDirectory', 'service'];
const DENIALS = ['invalid_email', 'registration_disabled', 'method_disabled', 'denylisted_email', 'denylisted_domain', 'domain_not_accepted', 'company_method_disabled', 'email_unverified', 'plugin:vip-only'];
const OTHERS = ['no_email', 'account_pending', 'account_unavailable', 'identity_conflict', 'identity_taken', 'service_not_granted', 'no_portal_access', 'service_unknown', 'google_email_missing', 'google_email_unverified', 'google_hosted_domain_mismatch', 'google_cancelled'];
const PRIVATE = ['denylisted_email', 'denylisted_domain', 'plugin:vip-only', 'plugin:', 'something_new', 'toString', '__proto__'];

test('a denylist match, a plugin and an unknown code read as the generic refusal on every path', (t) => {
  for (const path of PATHS) {
    const generic = refusal('denylisted_email', path);
    for (const code of PRIVATE) {
      const page = refusal(code, path);
      t.deepEqual(page, generic, `${code} on ${path}`);
      t.is(page.code, 'registration_refused', `${code} on ${path}`);
      t.is(page.status, 403);
    }
  }
});

test('no text ever names a denylist, a block or a plugin', (t) => {
  for (const path of PATHS) {
    for (const code of [...DENIALS, ...OTHERS]) {
      const page = refusal(code, path);
      t.notRegex(page.message, /deny|denied list|block|plugin|rule/i, `${code} on ${path}`);
      t.true(page.message.length > 10, `${code} on ${path} has a text`);
      t.true(page.status >= 400 && page.status < 500);
    }
  }
});

const TABLE: Array<[string, RefusalPath, number, string, RegExp]> = [
  ['registration_disabled', 'portal', 403, 'registration_disabled', /Creating an account here is turned off/],
  ['registration_disabled', 'google', 403, 'registration_disabled', /New accounts cannot be created with Google here/],
  ['registration_disabled', 'activeDirectory', 403, 'registration_disabled', /Windows \/ Active Directory is not available here/],
  ['method_disabled', 'portal', 403, 'method_disabled', /with this form is turned off/],
  ['domain_not_accepted', 'portal', 403, 'domain_not_accepted', /Only people from our customers' companies/],
  ['domain_not_accepted', 'google', 403, 'domain_not_accepted', /email domain cannot be created here/],
  ['company_method_disabled', 'activeDirectory', 403, 'company_method_disabled', /not available here/],
  ['denylisted_domain', 'portal', 403, 'registration_refused', /We can't create an account for this address/],
  ['denylisted_email', 'google', 403, 'registration_refused', /An account cannot be created for this address/],
  ['denylisted_email', 'activeDirectory', 403, 'registration_refused', /Your sign-up was not accepted/],
  ['invalid_email', 'activeDirectory', 403, 'invalid_email', /email address in your directory account cannot be used/],
  ['no_email', 'activeDirectory', 403, 'no_email', /no email address/],
  ['account_pending', 'activeDirectory', 403, 'account_pending', /waiting for its email verification/],
  ['account_unavailable', 'google', 403, 'account_unavailable', /cannot sign in\. Contact the support team/],
  ['account_unavailable', 'service', 403, 'account_unavailable', /cannot be used to sign in right now/],
  ['identity_conflict', 'activeDirectory', 409, 'identity_conflict', /linked to another directory user/],
  ['identity_taken', 'google', 409, 'identity_taken', /already linked to another account/],
  ['service_not_granted', 'service', 403, 'service_not_granted', /not been given access to this service/],
  ['google_email_unverified', 'google', 403, 'google_email_unverified', /not verified/],
  ['google_hosted_domain_mismatch', 'google', 403, 'google_hosted_domain_mismatch', /Workspace domain/],
  ['google_cancelled', 'google', 401, 'google_cancelled', /did not complete/],
];

for (const [code, path, status, shown, text] of TABLE) {
  test(`${code} on ${path} -> ${status} ${shown}`, (t) => {
    const page = refusal(code, path);
    t.is(page.status, status);
    t.is(page.code, shown);
    t.regex(page.message, text);
  });
}
