/**
 * The canonicaliser: examples, RFC 5321 length limits, and properties (fast-check):
 * idempotence, case and trailing-dot invariance, the fast path never disagreeing
 * with the full path, and the shape of every canonical output.
 */
import test from 'ava';
import fc from 'fast-check';
import { addressWithoutTag, canonicalizeDomain, canonicalizeDomainFullPath, canonicalizeEmail, canonicalizeEmailFullPath } from '../../policies/email.ts';

test('canonical form: lowercase, punycode, one trailing dot stripped', (t) => {
  t.deepEqual(canonicalizeEmail('Bob.Smith+Tag@Corp.COM.'), { ok: true, email: 'bob.smith+tag@corp.com', local: 'bob.smith+tag', domain: 'corp.com' });
  t.deepEqual(canonicalizeEmail('x@Bücher.de'), { ok: true, email: 'x@xn--bcher-kva.de', local: 'x', domain: 'xn--bcher-kva.de' });
  t.deepEqual(canonicalizeEmail('x@ｂücher．ｄｅ'), { ok: true, email: 'x@xn--bcher-kva.de', local: 'x', domain: 'xn--bcher-kva.de' });
  t.deepEqual(canonicalizeEmail("o'brien@corp.com"), { ok: true, email: "o'brien@corp.com", local: "o'brien", domain: 'corp.com' });
});

test('refusals carry a detail', (t) => {
  const cases: Array<[unknown, string]> = [
    [['a@b.com'], 'not_a_string'],
    ['', 'empty'],
    ['a@b@c.com', 'multiple_at'],
    ['"a@b"@c.com', 'quoted_local_part'],
    ['"a"@c.com', 'quoted_local_part'],
    ['a(b)@c.com', 'comment'],
    ['=?utf-8?b?YQ==?=@c.com', 'encoded_word'],
    ['a%b@c.com', 'source_route'],
    ['ü@c.com', 'non_ascii_local_part'],
    ['a b@c.com', 'forbidden_character'],
    ['a@c.com\u0000', 'forbidden_character'],
    ['abc', 'missing_at'],
    ['@c.com', 'empty_local_part'],
    ['a@', 'empty_domain'],
    ['a@localhost', 'single_label_domain'],
    ['a@1.2.3.4', 'numeric_top_label'],
    ['a@ab--cd.com', 'reserved_label'],
    ['a@xn--zz.com', 'invalid_punycode'],
    ['a@[1.2.3.4]', 'forbidden_character'],
    ['a@b.com/x', 'forbidden_character'],
    ['a@аpple.com', 'mixed_script_label'],
    ['a@αpple.com', 'mixed_script_label'],
  ];
  for (const [input, detail] of cases) {
    t.deepEqual(canonicalizeEmail(input), { ok: false, reason: 'invalid_email', detail }, String(input));
  }
});

test('RFC 5321 lengths: local 64, label 63, domain 253, whole 254', (t) => {
  t.true(canonicalizeEmail(`${'a'.repeat(64)}@x.com`).ok);
  t.false(canonicalizeEmail(`${'a'.repeat(65)}@x.com`).ok);
  t.true(canonicalizeEmail(`a@${'b'.repeat(63)}.com`).ok);
  t.false(canonicalizeEmail(`a@${'b'.repeat(64)}.com`).ok);
  const domain253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  t.is(domain253.length, 253);
  t.true(canonicalizeDomain(domain253).ok);
  t.false(canonicalizeDomain(`${domain253}e`).ok);
  const local = 'a'.repeat(64);
  const domain189 = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  t.is(`${local}@${domain189}`.length, 254);
  t.true(canonicalizeEmail(`${local}@${domain189}`).ok);
  t.false(canonicalizeEmail(`${local}@${domain189}x`).ok);
});

test('canonicalizeDomain: forms and refusals', (t) => {
  t.deepEqual(canonicalizeDomain('Corp.COM.'), { ok: true, domain: 'corp.com' });
  t.false(canonicalizeDomain('corp.com..').ok);
  t.false(canonicalizeDomain('corp.com/evil').ok);
  t.false(canonicalizeDomain('corp%2ecom').ok);
  t.false(canonicalizeDomain('xyz').ok);
  t.deepEqual(canonicalizeDomain('XYZ', { allowSingleLabel: true }), { ok: true, domain: 'xyz' });
  t.false(canonicalizeDomain({ toString: () => 'corp.com' }).ok);
});

test('addressWithoutTag drops the +tag from the first +', (t) => {
  t.is(addressWithoutTag('bob+x@corp.com'), 'bob@corp.com');
  t.is(addressWithoutTag('bob+x+y@corp.com'), 'bob@corp.com');
  t.is(addressWithoutTag('bob@corp.com'), 'bob@corp.com');
  t.is(addressWithoutTag('+x@corp.com'), '+x@corp.com');
});

// --- properties ------------------------------------------------------------

const LABEL_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-'.split('');
const LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-'#$&*/=?^`{|}~".split('');
const label = fc.string({ unit: fc.constantFrom(...LABEL_CHARS), minLength: 1, maxLength: 12 });
const localPart = fc.string({ unit: fc.constantFrom(...LOCAL_CHARS), minLength: 1, maxLength: 20 });
const domainName = fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => labels.join('.'));
const unicodeDomain = fc.array(fc.oneof(label, fc.constantFrom('bücher', 'ＣＯＲＰ', 'straße', 'пример', '例え', 'xn--bcher-kva', 'ｅｘａｍｐｌｅ')), { minLength: 2, maxLength: 4 }).map((l) => l.join('.'));
const addressLike = fc.tuple(localPart, fc.oneof(domainName, unicodeDomain)).map(([l, d]) => `${l}@${d}`);
/** Strings made of characters that matter to email parsing, to hit edge cases often. */
const hostileString = fc.string({
  unit: fc.constantFrom(...'aZ09.-+@"()<>[]\\/?#%!=:; \t\r\n\u0000\u00A0\u200BＡ．。＠üаα'.split('')),
  maxLength: 24,
});
const anyInput = fc.oneof(addressLike, hostileString, fc.string(), fc.anything());

test('property: canonicalisation is idempotent', (t) => {
  fc.assert(
    fc.property(anyInput, (input) => {
      const first = canonicalizeEmail(input);
      if (!first.ok) return true;
      const second = canonicalizeEmail(first.email);
      return second.ok && second.email === first.email && second.local === first.local && second.domain === first.domain;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('property: the fast path never disagrees with the full canonicaliser', (t) => {
  fc.assert(fc.property(anyInput, (input) => {
    const fast = canonicalizeEmail(input);
    const full = canonicalizeEmailFullPath(input);
    return JSON.stringify(fast) === JSON.stringify(full);
  }), { numRuns: 5000 });
  t.pass();
});

/** Flips the case of ASCII letters only (String#toUpperCase maps ß to SS, which is another domain). */
function flipAsciiCase(value: string, mask: boolean[]): string {
  return [...value].map((ch, i) => (/[a-z]/i.test(ch) && mask[i % mask.length] ? (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) : ch)).join('');
}

test('property: the domain fast path never disagrees with the full domain canonicaliser', (t) => {
  fc.assert(fc.property(fc.oneof(domainName, unicodeDomain, hostileString, fc.anything()), fc.boolean(), (input, single) => {
    return JSON.stringify(canonicalizeDomain(input, { allowSingleLabel: single })) === JSON.stringify(canonicalizeDomainFullPath(input, { allowSingleLabel: single }));
  }), { numRuns: 5000 });
  t.pass();
});

test('property: ASCII case and one trailing dot never change the result', (t) => {
  fc.assert(
    fc.property(addressLike, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), fc.boolean(), (input, mask, dot) => {
      const base = canonicalizeEmail(input);
      const variant = canonicalizeEmail(`${flipAsciiCase(input, mask)}${dot ? '.' : ''}`);
      return base.ok ? variant.ok && variant.email === base.email : !variant.ok;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('property: every canonical address has the canonical shape', (t) => {
  fc.assert(
    fc.property(anyInput, (input) => {
      const result = canonicalizeEmail(input);
      if (!result.ok) return true;
      const { email, local, domain } = result;
      return (
        email === `${local}@${domain}` &&
        email === email.toLowerCase() &&
        /^[\x21-\x7e]+$/.test(email) &&
        email.split('@').length === 2 &&
        !domain.endsWith('.') &&
        local.length <= 64 &&
        domain.length <= 253 &&
        email.length <= 254 &&
        domain.split('.').every((l) => l.length >= 1 && l.length <= 63 && /^[a-z0-9-]+$/.test(l))
      );
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('property: canonicalizeDomain is idempotent and case/dot invariant', (t) => {
  fc.assert(
    fc.property(fc.oneof(domainName, unicodeDomain, hostileString), (input) => {
      const first = canonicalizeDomain(input);
      if (!first.ok) return true;
      const again = canonicalizeDomain(first.domain);
      const upper = canonicalizeDomain(`${first.domain.toUpperCase()}.`);
      return again.ok && again.domain === first.domain && upper.ok && upper.domain === first.domain;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
