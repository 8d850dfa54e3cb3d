/**
 * Sender authentication for inbound mail: is the address in `From:` really the sender's?
 * A forged From must never make an account (or get an invite mailed to the forged address).
 *
 * Two ways to know, chosen by configuration (MAIL_INTAKE_AUTH):
 *   verify  `verifyMessage`: SPF (the connecting IP and MAIL FROM/HELO), DKIM and DMARC
 *           checked here with mailauth against DNS (the system resolver, or a `resolver`
 *           function that tests back with a table);
 *   relay   `readTrustedAuthResults`: a relay in front already checked, and its
 *           Authentication-Results header (RFC 8601) is believed only when it carries the
 *           configured authserv-id and is the top-most one (a relay prepends its own; any
 *           further down came with the message and could be written by anyone).
 * Both end in `judgeSenderAuth`, the one rule: the From domain must have DMARC pass, or,
 * when the domain publishes no DMARC policy, an SPF or DKIM pass aligned with it (relaxed:
 * the same domain, or one a subdomain of the other). A DMARC fail, no aligned pass, or no
 * From domain fails; a DNS timeout is transient (the SMTP client is asked to retry).
 *
 *   const verdict = await verifyMessage(raw, { ip: '203.0.113.5', helo: 'mx.corp.example', mailFrom: 'jo@corp.example' });
 *   if (!verdict.pass) ...verdict.reason   // 'dmarc_fail', 'no_aligned_pass', ...
 */
import type { DNSResolver } from 'mailauth';

export type { DNSResolver };

// mailauth is a large module tree (seconds to load on a busy machine): loaded on the first
// message to verify, not at every gateway start.
let mailauth: Promise<typeof import('mailauth')> | undefined;

export type SenderAuthFailure =
  | 'dmarc_fail'
  | 'no_aligned_pass'
  | 'no_author_domain'
  | 'dns_temporary_failure'
  | 'no_trusted_authentication_results'
  /** The authenticated From domain is not the one of the address the intake would act on. */
  | 'author_mismatch';

export type SenderAuthVerdict =
  | { pass: true; domain: string; by: 'dmarc' | 'aligned_spf' | 'aligned_dkim' }
  | { pass: false; reason: SenderAuthFailure; domain: string | null; transient: boolean };

/** What the checks found, whoever ran them. Results are RFC 8601 words (pass, fail, none, temperror...). */
export interface SenderAuthSummary {
  /** Domain of the (single) From address; null when there is none or several. */
  fromDomain: string | null;
  dmarc: string;
  spf: { result: string; domain: string | null };
  dkim: Array<{ result: string; domain: string | null }>;
}

const lower = (value: string | null | undefined) => (value ?? '').trim().toLowerCase().replace(/\.$/, '') || null;

/** Relaxed alignment without a public-suffix list: the same domain, or one a subdomain of the other. */
export function aligned(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  return a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`);
}

/** The one rule (pure). */
export function judgeSenderAuth(s: SenderAuthSummary): SenderAuthVerdict {
  const domain = lower(s.fromDomain);
  const fail = (reason: SenderAuthFailure, transient = false): SenderAuthVerdict => ({ pass: false, reason, domain, transient });
  if (!domain) return fail('no_author_domain');
  const dmarc = s.dmarc.toLowerCase();
  if (dmarc === 'pass') return { pass: true, domain, by: 'dmarc' };
  if (dmarc === 'fail') return fail('dmarc_fail');
  // No DMARC policy (none), or one that could not be read: an aligned pass is still required.
  if (s.spf.result.toLowerCase() === 'pass' && aligned(lower(s.spf.domain), domain)) return { pass: true, domain, by: 'aligned_spf' };
  if (s.dkim.some((d) => d.result.toLowerCase() === 'pass' && aligned(lower(d.domain), domain))) return { pass: true, domain, by: 'aligned_dkim' };
  if (dmarc === 'temperror' || s.spf.result.toLowerCase() === 'temperror' || s.dkim.some((d) => d.result.toLowerCase() === 'temperror')) {
    return fail('dns_temporary_failure', true);
  }
  return fail('no_aligned_pass');
}

export interface VerifyOptions {
  /** The connecting client's IP address (SPF). */
  ip: string;
  /** What the client said in EHLO/HELO. */
  helo?: string;
  /** The envelope sender (MAIL FROM), '' for the null return path. */
  mailFrom: string;
  /** DNS lookups; default the system resolver. Tests pass one backed by a table. */
  resolver?: DNSResolver;
}

/** SPF, DKIM and DMARC for one message, checked here (mailauth). */
export async function verifyMessage(raw: Buffer, options: VerifyOptions): Promise<SenderAuthVerdict & { summary: SenderAuthSummary }> {
  mailauth ??= import('mailauth');
  const { authenticate } = await mailauth;
  const result = await authenticate(raw, {
    ip: options.ip,
    ...(options.helo ? { helo: options.helo } : {}),
    sender: options.mailFrom,
    ...(options.resolver ? { resolver: options.resolver } : {}),
    disableArc: true,
    disableBimi: true,
  });
  const headerFrom = (result.dkim as { headerFrom?: string[] }).headerFrom ?? [];
  const fromDomain = headerFrom.length === 1 ? lower(headerFrom[0]!.slice(headerFrom[0]!.lastIndexOf('@') + 1)) : null;
  const spf = result.spf as { status?: { result?: string }; domain?: string } | false;
  const summary: SenderAuthSummary = {
    fromDomain,
    dmarc: result.dmarc ? (result.dmarc as { status: { result: string } }).status.result : 'none',
    spf: { result: (spf && spf.status?.result) || 'none', domain: (spf && spf.domain) || null },
    dkim: (result.dkim.results ?? []).map((r) => ({
      result: (r as { status?: { result?: string } }).status?.result ?? 'none',
      domain: (r as { signingDomain?: string }).signingDomain ?? null,
    })),
  };
  return { ...judgeSenderAuth(summary), summary };
}

/** One Authentication-Results header value, parsed (RFC 8601 section 2.2), comments dropped. */
export interface AuthenticationResults {
  authservId: string;
  results: Array<{ method: string; result: string; props: Record<string, string> }>;
}

function withoutComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      out += ch;
      if (ch === '\\' && i + 1 < value.length) out += value[++i];
      else if (ch === '"') quoted = false;
    } else if (ch === '"' && depth === 0) {
      quoted = true;
      out += ch;
    } else if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0) out += ch;
  }
  return out;
}

function splitOutsideQuotes(value: string, separator: RegExp): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && separator.test(ch)) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

const unquote = (v: string) => (v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v);

export function parseAuthenticationResults(value: string): AuthenticationResults | null {
  const [head, ...resinfos] = splitOutsideQuotes(withoutComments(value.replace(/\r?\n[ \t]+/g, ' ')), /;/);
  const authservId = unquote(head?.split(/\s+/)[0] ?? '').toLowerCase();
  if (!authservId) return null;
  const results: AuthenticationResults['results'] = [];
  for (const info of resinfos) {
    const [first, ...rest] = splitOutsideQuotes(info, /\s/);
    const match = /^([\w.-]+)(?:\/\d+)?=([\w-]+)$/.exec(first ?? '');
    if (!match) continue;
    const props: Record<string, string> = {};
    for (const token of rest) {
      const eq = token.indexOf('=');
      if (eq > 0) props[token.slice(0, eq).toLowerCase()] = unquote(token.slice(eq + 1));
    }
    results.push({ method: match[1]!.toLowerCase(), result: match[2]!.toLowerCase(), props });
  }
  return { authservId, results };
}

const domainOf = (value: string | undefined) => (value ? lower(value.slice(value.lastIndexOf('@') + 1)) : null);

/**
 * The verdict of a trusted relay: `headerValues` are the message's Authentication-Results
 * values top-most first; only the top-most one counts, and only with `authservId`.
 */
export function readTrustedAuthResults(headerValues: string[], authservId: string, fromDomain: string | null): SenderAuthVerdict {
  const top = headerValues.length ? parseAuthenticationResults(headerValues[0]!) : null;
  if (!top || top.authservId !== authservId.toLowerCase()) {
    return { pass: false, reason: 'no_trusted_authentication_results', domain: lower(fromDomain), transient: false };
  }
  const domain = lower(fromDomain);
  const of = (method: string) => top.results.filter((r) => r.method === method);
  // A DMARC result about another From domain than the one we act on does not count.
  const dmarc = of('dmarc').find((r) => !r.props['header.from'] || lower(r.props['header.from']) === domain);
  const spf = of('spf')[0];
  return judgeSenderAuth({
    fromDomain: domain,
    dmarc: dmarc?.result ?? 'none',
    spf: { result: spf?.result ?? 'none', domain: domainOf(spf?.props['smtp.mailfrom'] ?? spf?.props['smtp.helo']) },
    dkim: of('dkim').map((r) => ({ result: r.result, domain: lower(r.props['header.d']) ?? domainOf(r.props['header.i']) })),
  });
}
