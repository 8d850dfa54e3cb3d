/**
 * The ONE email and domain canonicaliser. Every path (sign-up, Google, AD, email
 * intake, agent add, denylist and company parsing, evaluate()) goes through it, so
 * an address means the same thing everywhere and a rule cannot be side-stepped by
 * spelling the address differently.
 *
 * Decisions, identical on every path:
 * - Input must be a string. Arrays, objects with toString, numbers: refused.
 * - Nothing is trimmed. Whitespace anywhere (including Unicode spaces), control
 *   characters (NUL, CR, LF, ...), format characters (zero-width space, soft
 *   hyphen, bidi marks), private-use, unassigned code points and lone surrogates
 *   are refused. A form route that wants to forgive a stray space must trim its own
 *   field before calling.
 * - Exactly one `@`. The local part is a dot-atom (RFC 5322 atext, no leading,
 *   trailing or doubled dot) of ASCII only: quoted local parts, comments `( )`,
 *   RFC 2047 encoded words `=?...?=`, and the source-routing characters `%` and `!`
 *   (percent-hack / bang paths, which some relays still forward elsewhere) are
 *   refused. Non-ASCII local parts (SMTPUTF8 addresses) are refused.
 * - The whole address is lowercased: Gatehouse treats local parts
 *   case-insensitively, like every major mail provider, so `Bob@x` and `bob@x` are
 *   one customer and one denylist entry. No other local-part folding (no Gmail dot
 *   removal); `+tag` is kept in the canonical form and only dropped by
 *   addressWithoutTag() for the denylist rule.
 * - The domain goes through WHATWG/UTS-46 `domainToASCII` (case folding, fullwidth
 *   and compatibility forms map to ASCII, ideographic full stops map to `.`, IDN to
 *   punycode, invalid `xn--` labels refused), then ONE trailing dot is stripped and
 *   the result must be a strict LDH host name: labels 1..63 of [a-z0-9-] not
 *   starting or ending with `-`, no `--` in positions 3-4 unless an `xn--` A-label
 *   that round-trips, an alphabetic (non-numeric) top label, at least two labels
 *   (a single label is accepted only for denylist entries, so `xyz` can block a TLD).
 *   Address literals (`[1.2.3.4]`) are refused.
 * - Homographs: a label whose Unicode form mixes Latin with Cyrillic or Greek
 *   letters (or Cyrillic with Greek) is refused. A whole-script look-alike
 *   (`аррӏе.com` in Cyrillic only) is accepted as the different domain it is: all
 *   matching compares punycode, so it never matches `apple.com` rules.
 * - RFC 5321 lengths on the canonical form: local <= 64, domain <= 253,
 *   label <= 63, whole address <= 254.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

export type EmailResult =
  | { ok: true; email: string; local: string; domain: string }
  | { ok: false; reason: 'invalid_email'; detail: string };

export type DomainResult =
  | { ok: true; domain: string }
  | { ok: false; reason: 'invalid_domain'; detail: string };

export interface DomainOptions {
  /** Accept a single-label domain such as `xyz` (denylist TLD blocks only). */
  allowSingleLabel?: boolean;
}

export const MAX_LOCAL_LENGTH = 64;
export const MAX_DOMAIN_LENGTH = 253;
export const MAX_LABEL_LENGTH = 63;
export const MAX_EMAIL_LENGTH = 254;
/** Raw inputs longer than this are refused before any Unicode work (cheap DoS guard). */
const MAX_RAW_LENGTH = 1024;

const FORBIDDEN_CHARACTER = /[\p{C}\p{Z}\s]/u;
const ASCII_ONLY = /^[\x21-\x7e]*$/;
const DOT_ATOM = /^[a-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[a-z0-9#$&'*+/=?^_`{|}~-]+)*$/i;
const FAST_ASCII_DOMAIN = /^[A-Za-z0-9.-]+$/;
/**
 * ASCII characters that may never appear in a raw domain. This check must run BEFORE
 * domainToASCII: it is the WHATWG host parser, which cuts the input at `/ ? # \`
 * (`corp.com/evil` -> `corp.com`) and percent-decodes (`corp%2ecom` -> `corp.com`).
 */
const FORBIDDEN_DOMAIN_ASCII = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const NUMERIC = /^[0-9]+$/;
const LATIN = /\p{Script=Latin}/u;
const CYRILLIC = /\p{Script=Cyrillic}/u;
const GREEK = /\p{Script=Greek}/u;

function failEmail(detail: string): EmailResult {
  return { ok: false, reason: 'invalid_email', detail };
}

function failDomain(detail: string): DomainResult {
  return { ok: false, reason: 'invalid_domain', detail };
}

/** Why a local part is refused, or null when it is a valid ASCII dot-atom. */
function localPartProblem(local: string): string | null {
  if (local.length === 0) return 'empty_local_part';
  if (!ASCII_ONLY.test(local)) return 'non_ascii_local_part';
  if (local.includes('"')) return 'quoted_local_part';
  if (local.includes('(') || local.includes(')')) return 'comment';
  if (local.includes('%') || local.includes('!')) return 'source_route';
  if (!DOT_ATOM.test(local)) return 'invalid_local_part';
  if (local.length > MAX_LOCAL_LENGTH) return 'local_part_too_long';
  return null;
}

/** A label mixing Latin/Cyrillic/Greek letters is a homograph device. */
function isMixedScript(label: string): boolean {
  const scripts = Number(LATIN.test(label)) + Number(CYRILLIC.test(label)) + Number(GREEK.test(label));
  return scripts > 1;
}

/** Checks every `xn--` label: it must round-trip and must not mix scripts. */
function aLabelProblem(label: string): string | null {
  const unicode = domainToUnicode(label);
  if (unicode === '' || domainToASCII(unicode) !== label) return 'invalid_punycode';
  if (isMixedScript(unicode)) return 'mixed_script_label';
  return null;
}

function labelProblem(label: string): string | null {
  if (label.length === 0) return 'empty_label';
  if (label.length > MAX_LABEL_LENGTH) return 'label_too_long';
  if (!LDH_LABEL.test(label)) return 'invalid_label';
  if (label.length >= 4 && label[2] === '-' && label[3] === '-') {
    return label.startsWith('xn--') ? aLabelProblem(label) : 'reserved_label';
  }
  return null;
}

/**
 * Maps the raw domain (already free of URL syntax) to ASCII. The fast path (plain
 * ASCII) only lowercases, as domainToASCII would; `xn--` labels are then checked by
 * aLabelProblem() on both paths.
 */
function toAscii(raw: string): string {
  if (FAST_ASCII_DOMAIN.test(raw)) return raw.toLowerCase();
  return domainToASCII(raw);
}

/** Validates an ASCII, lowercased domain (trailing dot already stripped). */
function asciiDomainProblem(domain: string, options: DomainOptions): string | null {
  if (domain.length === 0) return 'empty_domain';
  if (domain.length > MAX_DOMAIN_LENGTH) return 'domain_too_long';
  const labels = domain.split('.');
  for (const label of labels) {
    const problem = labelProblem(label);
    if (problem !== null) return problem;
  }
  if (labels.length < 2 && options.allowSingleLabel !== true) return 'single_label_domain';
  if (NUMERIC.test(labels[labels.length - 1] ?? '')) return 'numeric_top_label';
  return null;
}

/**
 * Canonicalises a domain: UTS-46 mapping, punycode, lowercase, one trailing dot
 * stripped, strict LDH validation.
 *
 * @example canonicalizeDomain('Bücher.DE.') // { ok: true, domain: 'xn--bcher-kva.de' }
 */
export function canonicalizeDomain(input: unknown, options: DomainOptions = {}): DomainResult {
  if (typeof input === 'string' && input.length <= MAX_DOMAIN_LENGTH && scanHost(input, 0)) return { ok: true, domain: input.toLowerCase() };
  return canonicalizeDomainFullPath(input, options);
}

/**
 * The complete domain canonicaliser, without the fast path. Exported so tests can
 * prove the fast path never disagrees with it; callers use canonicalizeDomain().
 */
export function canonicalizeDomainFullPath(input: unknown, options: DomainOptions = {}): DomainResult {
  if (typeof input !== 'string') return failDomain('not_a_string');
  if (input.length === 0) return failDomain('empty_domain');
  if (input.length > MAX_RAW_LENGTH) return failDomain('domain_too_long');
  if (FORBIDDEN_CHARACTER.test(input) || FORBIDDEN_DOMAIN_ASCII.test(input)) return failDomain('forbidden_character');
  let ascii = toAscii(input);
  if (ascii === '') return failDomain('invalid_idn');
  if (ascii.endsWith('.')) ascii = ascii.slice(0, -1);
  const problem = asciiDomainProblem(ascii, options);
  return problem === null ? { ok: true, domain: ascii } : failDomain(problem);
}

/** atext characters the fast path accepts in a local part (the rarer ones take the full path). */
const FAST_LOCAL = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-'") FAST_LOCAL[ch.charCodeAt(0)] = 1;

function isAlnum(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57);
}

/** Scans a plain `local@host.tld` address; returns the index of `@`, or -1 to take the full path. */
function scanLocal(input: string): number {
  let previousDot = true;
  for (let i = 0; i < input.length; i += 1) {
    const code = input.charCodeAt(i);
    if (code === 64) return i === 0 || previousDot || i > MAX_LOCAL_LENGTH ? -1 : i;
    if (code === 46) {
      if (previousDot) return -1;
      previousDot = true;
    } else if (code < 128 && FAST_LOCAL[code] === 1) previousDot = false;
    else return -1;
  }
  return -1;
}

/** True when input[from..] is a plain LDH host name with >= 2 labels, no `--`, no trailing dot. */
function scanHost(input: string, from: number): boolean {
  let labelStart = from;
  let labels = 1;
  let numeric = true;
  for (let i = from; i < input.length; i += 1) {
    const code = input.charCodeAt(i);
    if (code === 46) {
      const size = i - labelStart;
      if (size === 0 || size > MAX_LABEL_LENGTH || input.charCodeAt(i - 1) === 45) return false;
      labelStart = i + 1;
      labels += 1;
      numeric = true;
    } else if (code === 45) {
      if (i === labelStart || input.charCodeAt(i + 1) === 45) return false;
    } else if (isAlnum(code)) {
      if (code > 57) numeric = false;
    } else return false;
  }
  const last = input.length - labelStart;
  return labels >= 2 && last > 0 && last <= MAX_LABEL_LENGTH && !numeric && input.charCodeAt(input.length - 1) !== 45;
}

/**
 * Fast path for the common plain ASCII address. It accepts only inputs the full path
 * accepts with the same result (tested property); anything else returns null.
 */
function fastCanonicalEmail(input: string): EmailResult | null {
  if (input.length > MAX_EMAIL_LENGTH) return null;
  const at = scanLocal(input);
  if (at === -1 || !scanHost(input, at + 1)) return null;
  const email = input.toLowerCase();
  return { ok: true, email, local: email.slice(0, at), domain: email.slice(at + 1) };
}

/**
 * Canonicalises an email address (see the module header for every rule).
 *
 * @example canonicalizeEmail('Bob@Corp.COM.') // { ok: true, email: 'bob@corp.com', local: 'bob', domain: 'corp.com' }
 */
export function canonicalizeEmail(input: unknown): EmailResult {
  if (typeof input !== 'string') return failEmail('not_a_string');
  return fastCanonicalEmail(input) ?? canonicalizeEmailFullPath(input);
}

/**
 * The complete canonicaliser, without the fast path. Exported so tests can prove
 * that the fast path never disagrees with it; callers use canonicalizeEmail().
 */
export function canonicalizeEmailFullPath(input: unknown): EmailResult {
  if (typeof input !== 'string') return failEmail('not_a_string');
  if (input.length === 0) return failEmail('empty');
  if (input.length > MAX_RAW_LENGTH) return failEmail('too_long');
  if (FORBIDDEN_CHARACTER.test(input)) return failEmail('forbidden_character');
  if (input.includes('=?')) return failEmail('encoded_word');
  const at = input.indexOf('@');
  if (at === -1) return failEmail('missing_at');
  if (input.indexOf('@', at + 1) !== -1) {
    return failEmail(input.includes('"') ? 'quoted_local_part' : 'multiple_at');
  }
  const localProblem = localPartProblem(input.slice(0, at));
  if (localProblem !== null) return failEmail(localProblem);
  const domain = canonicalizeDomainFullPath(input.slice(at + 1));
  if (!domain.ok) return failEmail(domain.detail);
  const local = input.slice(0, at).toLowerCase();
  const email = `${local}@${domain.domain}`;
  if (email.length > MAX_EMAIL_LENGTH) return failEmail('too_long');
  return { ok: true, email, local, domain: domain.domain };
}

/**
 * Drops a `+tag` (from the first `+`) from a CANONICAL address's local part, so a
 * denylisted `bob@x.com` also blocks `bob+anything@x.com`. A local part that starts
 * with `+` is left alone (there is nothing before the tag).
 *
 * @example addressWithoutTag('bob+spam@x.com') // 'bob@x.com'
 */
export function addressWithoutTag(email: string): string {
  const at = email.lastIndexOf('@');
  const plus = email.indexOf('+');
  if (plus <= 0 || at === -1 || plus > at) return email;
  return email.slice(0, plus) + email.slice(at);
}
