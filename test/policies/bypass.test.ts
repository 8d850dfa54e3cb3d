/**
 * Hostile addresses: each must get exactly the expected decision. The world:
 * companies mode; acme accepts corp.com and its subdomains, tight accepts tight.org
 * only; the denylist holds the address bob@corp.com and the domains evil.com and
 * banned.corp.com (inside acme's domain: the denylist wins).
 */
import test from 'ava';
import { evaluate } from '../../policies/evaluate.ts';
import type { SignupMethod } from '../../policies/types.ts';
import { company, denylist, policy, services, snapshotOf } from './fixtures.ts';

const snapshot = snapshotOf({
  policy: policy('companies'),
  companies: [
    company('acme', ['corp.com'], { services: ['s-acme'] }),
    company('tight', ['tight.org'], { services: ['s-tight'], allowSubdomains: false }),
  ],
  services: services('s-acme', 's-tight'),
  denylist: denylist('bob@corp.com', 'evil.com', 'banned.corp.com'),
});

type Expected = 'invalid_email' | 'denylisted_email' | 'denylisted_domain' | 'domain_not_accepted' | 'acme' | 'tight';

const withToString = { toString: () => 'ann@corp.com' };
const withValueOf = { valueOf: () => 'ann@corp.com', [Symbol.toPrimitive]: () => 'ann@corp.com' };

const HOSTILE: Array<[string, unknown, Expected]> = [
  // case, trailing dot, Unicode width: all canonicalise onto the denylisted address
  ['upper case address', 'BOB@CORP.COM', 'denylisted_email'],
  ['mixed case domain', 'bob@CoRp.CoM', 'denylisted_email'],
  ['trailing dot', 'bob@corp.com.', 'denylisted_email'],
  ['+tag variant', 'bob+promo@corp.com', 'denylisted_email'],
  ['+tag, case and trailing dot', 'Bob+X+Y@Corp.Com.', 'denylisted_email'],
  ['fullwidth domain', 'bob@ｃｏｒｐ.ｃｏｍ', 'denylisted_email'],
  ['fullwidth dot in domain', 'bob@corp．com', 'denylisted_email'],
  ['ideographic full stop', 'bob@corp。com', 'denylisted_email'],
  // domain rules: subdomains and label boundaries
  ['denylisted domain', 'x@evil.com', 'denylisted_domain'],
  ['denylisted domain, upper case and dot', 'x@EVIL.COM.', 'denylisted_domain'],
  ['subdomain of denylisted domain', 'x@mail.evil.com', 'denylisted_domain'],
  ['deep subdomain of denylisted domain', 'x@a.b.c.evil.com', 'denylisted_domain'],
  ['fullwidth denylisted domain', 'x@ｅｖｉｌ.com', 'denylisted_domain'],
  ['denylist beats the accepted domain', 'x@banned.corp.com', 'denylisted_domain'],
  ['denylist beats the accepted domain (deeper)', 'x@a.banned.corp.com', 'denylisted_domain'],
  ['suffix trick: evilcorp', 'x@evilcorp.com', 'domain_not_accepted'],
  ['suffix trick: notevil', 'x@notevil.com', 'domain_not_accepted'],
  ['suffix trick: corp.com as a subdomain elsewhere', 'x@corp.com.evil.net', 'domain_not_accepted'],
  ['prefix trick: corp.co', 'x@corp.co', 'domain_not_accepted'],
  ['hyphen trick: my-corp.com', 'x@my-corp.com', 'domain_not_accepted'],
  ['accepted subdomain', 'x@eu.corp.com', 'acme'],
  ['accepted domain fullwidth', 'x@ＣＯＲＰ．ＣＯＭ', 'acme'],
  ['no subdomains for tight', 'x@eu.tight.org', 'domain_not_accepted'],
  ['exact tight', 'X@Tight.Org.', 'tight'],
  // look-alikes and punycode
  ['Cyrillic o mixed into corp', 'x@cоrp.com', 'invalid_email'],
  ['punycode of the mixed-script label', 'x@xn--crp-sed.com', 'invalid_email'],
  ['punycode upper case, mixed script', 'x@XN--CRP-SED.com', 'invalid_email'],
  ['whole-script Cyrillic look-alike is another domain', 'x@аррӏе.com', 'domain_not_accepted'],
  ['whole-script look-alike as punycode', 'x@xn--80ak6aa92e.com', 'domain_not_accepted'],
  ['invalid punycode', 'x@xn--zz.com', 'invalid_email'],
  ['Cyrillic letter in the local part', 'bоb@corp.com', 'invalid_email'],
  ['fullwidth at sign', 'bob＠corp.com', 'invalid_email'],
  ['zero-width space in domain', 'bob@co\u200Brp.com', 'invalid_email'],
  ['soft hyphen in domain', 'bob@co\u00ADrp.com', 'invalid_email'],
  ['right-to-left override', 'bob@\u202Emoc.proc', 'invalid_email'],
  // quoting, comments, several @, routing
  ['quoted local part', '"bob"@corp.com', 'invalid_email'],
  ['quoted local part with @', '"x@evil.com"@corp.com', 'invalid_email'],
  ['two @', 'bob@corp.com@evil.com', 'invalid_email'],
  ['two @ the other way', 'x@evil.com@corp.com', 'invalid_email'],
  ['comment', 'bob(comment)@corp.com', 'invalid_email'],
  ['comment in domain', 'bob@(c)corp.com', 'invalid_email'],
  ['encoded word', '=?utf-8?q?bob?=@corp.com', 'invalid_email'],
  ['percent hack', 'x%evil.com@corp.com', 'invalid_email'],
  ['bang path', 'evil.com!x@corp.com', 'invalid_email'],
  ['display name form', 'Bob <bob@corp.com>', 'invalid_email'],
  ['address literal', 'x@[127.0.0.1]', 'invalid_email'],
  ['IP address domain', 'x@127.0.0.1', 'invalid_email'],
  ['port', 'x@corp.com:25', 'invalid_email'],
  ['path', 'x@corp.com/evil', 'invalid_email'],
  ['backslash', 'x@evil.com\\@corp.com', 'invalid_email'],
  ['URL syntax cut: path', 'x@corp.com/x', 'invalid_email'],
  ['URL syntax cut: query', 'x@corp.com?x', 'invalid_email'],
  ['URL syntax cut: fragment', 'x@corp.com#x', 'invalid_email'],
  ['URL syntax cut: backslash', 'x@corp.com\\x', 'invalid_email'],
  ['percent-encoded dot', 'x@corp%2ecom', 'invalid_email'],
  ['percent-encoded trailing dot', 'bob@corp.com%2e', 'invalid_email'],
  ['fullwidth percent-encoded dot', 'x@corp％2ecom', 'invalid_email'],
  ['underscore label', 'x@my_corp.com', 'invalid_email'],
  ['two trailing dots', 'bob@corp.com..', 'invalid_email'],
  ['leading dot in domain', 'bob@.corp.com', 'invalid_email'],
  ['empty label', 'bob@corp..com', 'invalid_email'],
  ['leading hyphen label', 'bob@-corp.com', 'invalid_email'],
  ['dot at start of local part', '.bob@corp.com', 'invalid_email'],
  ['double dot in local part', 'b..ob@corp.com', 'invalid_email'],
  // control characters and whitespace
  ['NUL after the address', 'bob@corp.com\u0000', 'invalid_email'],
  ['NUL inside', 'bob\u0000x@corp.com', 'invalid_email'],
  ['CRLF header injection', 'x@corp.com\r\nBcc: bob@corp.com', 'invalid_email'],
  ['LF', 'x@corp.com\n', 'invalid_email'],
  ['tab', 'x@corp.com\t', 'invalid_email'],
  ['leading space', ' bob@corp.com', 'invalid_email'],
  ['trailing space', 'bob@corp.com ', 'invalid_email'],
  ['space before @', 'bob @corp.com', 'invalid_email'],
  ['no-break space', 'bob@corp.com\u00A0', 'invalid_email'],
  ['line separator', 'bob@corp.com\u2028', 'invalid_email'],
  // lengths
  ['local part of 65', `${'a'.repeat(65)}@corp.com`, 'invalid_email'],
  ['label of 64', `x@${'a'.repeat(64)}.corp.com`, 'invalid_email'],
  ['huge input', `${'a'.repeat(100_000)}@corp.com`, 'invalid_email'],
  // not strings
  ['array of one address', ['bob@corp.com'], 'invalid_email'],
  ['array of an allowed address', ['ann@corp.com'], 'invalid_email'],
  ['object with toString', withToString, 'invalid_email'],
  ['object with valueOf / toPrimitive', withValueOf, 'invalid_email'],
  ['String object', new String('ann@corp.com'), 'invalid_email'],
  ['number', 42, 'invalid_email'],
  ['null', null, 'invalid_email'],
  ['undefined', undefined, 'invalid_email'],
  ['empty string', '', 'invalid_email'],
];

for (const [name, email, expected] of HOSTILE) {
  for (const method of ['portal', 'google'] as SignupMethod[]) {
    test(`hostile (${method}): ${name} -> ${expected}`, (t) => {
      const decision = evaluate({ method, email, emailVerified: true }, snapshot);
      if (expected === 'acme' || expected === 'tight') {
        t.is(decision.outcome, 'allow');
        t.is(decision.reason, 'allowed_company');
        t.is(decision.companyId, expected);
      } else {
        t.is(decision.outcome, 'deny');
        t.is(decision.reason, expected);
        t.is(decision.companyId, undefined);
        t.deepEqual(decision.services, []);
      }
    });
  }
}

test('the hostile table is large enough', (t) => {
  t.true(HOSTILE.length >= 30);
});

test('an agent cannot slip a denylisted address through by spelling it differently', (t) => {
  for (const email of ['BOB@CORP.COM', 'bob+x@corp.com.', 'bob@ｃｏｒｐ.com', 'x@mail.EVIL.com']) {
    t.true(evaluate({ method: 'agent', email, emailVerified: true }, snapshot).reason.startsWith('denylisted_'), email);
  }
});
