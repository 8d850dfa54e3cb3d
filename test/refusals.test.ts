/**
 * The one reason -> page table (gateway/http/refusals.ts): every refusal a customer path
 * can meet has a status and a text on every path, no page carries the reason code, and
 * the customer side never learns which rule refused when that rule is the denylist, a
 * deployer's plugin or an admin account out of an external source's reach.
 */
import test from 'ava';
import { refusal, type RefusalPath } from '../gateway/http/refusals.ts';

const PATHS: RefusalPath[] = ['portal', 'google', 'activeDirectory', 'service'];
const DENIALS = ['invalid_email', 'registration_disabled', 'method_disabled', 'denylisted_email', 'denylisted_domain', 'domain_not_accepted', 'company_method_disabled', 'email_unverified', 'plugin:vip-only'];
const OTHERS = ['no_email', 'account_pending', 'account_unavailable', 'identity_conflict', 'identity_taken', 'source_disabled', 'domain_unverified', 'service_not_granted', 'no_portal_access', 'service_unknown', 'google_email_missing', 'google_email_unverified', 'google_hosted_domain_mismatch', 'google_cancelled'];
const PRIVATE = ['denylisted_email', 'denylisted_domain', 'plugin:vip-only', 'plugin:', 'privileged_account', 'something_new', 'toString', '__proto__'];

test('a denylist match, a plugin, a privileged account and an unknown code read as the generic refusal on every path', (t) => {
  for (const path of PATHS) {
    const generic = refusal('denylisted_email', path);
    for (const code of PRIVATE) {
      const page = refusal(code, path);
      t.deepEqual(page, generic, `${code} on ${path}`);
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

test('a refusal is a status and words, never a code to show', (t) => {
  for (const path of PATHS) {
    for (const code of [...DENIALS, ...OTHERS, ...PRIVATE]) {
      const page = refusal(code, path);
      t.deepEqual(Object.keys(page).sort(), ['message', 'status'], `${code} on ${path}`);
      t.false(page.message.includes(code), `${code} on ${path}: the text does not name the code`);
    }
  }
});

const TABLE: Array<[string, RefusalPath, number, RegExp]> = [
  ['registration_disabled', 'portal', 403, /Creating an account here is turned off/],
  ['registration_disabled', 'google', 403, /New accounts cannot be created with Google here/],
  ['registration_disabled', 'activeDirectory', 403, /Windows \/ Active Directory is not available here/],
  ['method_disabled', 'portal', 403, /with this form is turned off/],
  ['domain_not_accepted', 'portal', 403, /Only people from our customers' companies/],
  ['domain_not_accepted', 'google', 403, /email domain cannot be created here/],
  ['company_method_disabled', 'activeDirectory', 403, /not available here/],
  ['denylisted_domain', 'portal', 403, /We can't create an account for this address/],
  ['denylisted_email', 'google', 403, /An account cannot be created for this address/],
  ['denylisted_email', 'activeDirectory', 403, /Your sign-up was not accepted/],
  ['invalid_email', 'activeDirectory', 403, /email address in your directory account cannot be used/],
  ['no_email', 'activeDirectory', 403, /no email address/],
  ['account_pending', 'activeDirectory', 403, /waiting for its email verification/],
  ['account_unavailable', 'google', 403, /cannot sign in\. Contact the support team/],
  ['account_unavailable', 'service', 403, /cannot be used to sign in right now/],
  ['identity_conflict', 'activeDirectory', 409, /linked to another directory user/],
  ['identity_taken', 'google', 409, /already linked to another account/],
  ['service_not_granted', 'service', 403, /not been given access to this service/],
  ['google_email_unverified', 'google', 403, /not verified/],
  ['google_hosted_domain_mismatch', 'google', 403, /Workspace domain/],
  ['google_cancelled', 'google', 401, /did not complete/],
  ['source_disabled', 'activeDirectory', 403, /Windows \/ Active Directory is not available here/],
  ['privileged_account', 'google', 403, /An account cannot be created for this address/],
];

for (const [code, path, status, text] of TABLE) {
  test(`${code} on ${path} -> ${status}`, (t) => {
    const page = refusal(code, path);
    t.is(page.status, status);
    t.regex(page.message, text);
  });
}
