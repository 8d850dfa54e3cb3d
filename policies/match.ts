/**
 * Domain matching at label boundaries. A rule for `corp.com` matches `corp.com`
 * and (when subdomains are allowed) `eu.corp.com`; never `evilcorp.com` or
 * `corp.com.evil.net`. Both sides must already be canonical (policies/email.ts):
 * matching is plain string comparison of punycode, so look-alikes never match.
 *
 * The snapshot uses labelSuffixes() to turn a domain into the few keys to look up
 * (`a.b.corp.com` -> `a.b.corp.com`, `b.corp.com`, `corp.com`, `com`), so the cost
 * of a decision does not grow with the size of the lists.
 */

/**
 * The domain itself, then each parent obtained by dropping the leftmost label.
 *
 * @example labelSuffixes('a.b.corp.com') // ['a.b.corp.com', 'b.corp.com', 'corp.com', 'com']
 */
export function labelSuffixes(domain: string): string[] {
  const suffixes = [domain];
  let dot = domain.indexOf('.');
  while (dot !== -1) {
    suffixes.push(domain.slice(dot + 1));
    dot = domain.indexOf('.', dot + 1);
  }
  return suffixes;
}

/**
 * True when `domain` equals `rule`, or is a subdomain of it at a label boundary
 * and subdomains are allowed.
 *
 * @example domainMatches('corp.com', 'eu.corp.com', true)  // true
 * @example domainMatches('corp.com', 'evilcorp.com', true) // false
 */
export function domainMatches(rule: string, domain: string, allowSubdomains: boolean): boolean {
  if (domain === rule) return true;
  if (!allowSubdomains || rule.length === 0) return false;
  return domain.length > rule.length + 1 && domain.endsWith(rule) && domain[domain.length - rule.length - 1] === '.';
}
