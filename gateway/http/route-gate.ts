/**
 * Gatehouse's own routers, run only for a path one of them could match.
 *
 * The app's route modules own a few path prefixes (/interaction, /admin, /register, ...);
 * oidc-provider owns the rest (/auth, /token, /me, /jwks, ...). Without this gate every
 * token request walks all the routers, each testing every one of its routes' regular
 * expressions, only to fall through: a tenth of a client_credentials grant's CPU.
 *
 * What a router could match is read from its layers' compiled regular expressions
 * (@koa/router's `^(?:\/interaction\/([^\/]+)\/login)(?:\/$)?$`): the literal text each
 * one must start with, or the one path it matches exactly. A layer whose expression is not
 * understood makes the gate pass everything, so the gate only ever skips routers that
 * could not have matched (compared case-insensitively, a superset of what they match).
 *
 *   app.use(routeGate([interactions, adminApi, ...]));   // routes() + allowedMethods() of each, in order
 */
import type Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';

/** What a layer could match: every path starting with `prefix`, or exactly `exact` (optionally with a trailing slash). */
export type Reach = { prefix: string } | { exact: string };

const LITERAL = /^(?:\\[/.\-~_]|[A-Za-z0-9_\-/~])/;

/** The literal text at the start of a regular expression fragment, and whether the fragment is nothing else. */
function leadingLiteral(source: string): { text: string; whole: boolean } {
  let text = '';
  let rest = source;
  for (let m = LITERAL.exec(rest); m; m = LITERAL.exec(rest)) {
    text += m[0].length === 2 ? m[0][1] : m[0];
    rest = rest.slice(m[0].length);
  }
  // A quantifier makes the last literal optional or repeatable.
  if (/^[?*{]/.test(rest)) return { text: text.slice(0, -1), whole: false };
  return { text, whole: rest === '' };
}

/** Splits at `|` outside groups and character classes; null when the source is not balanced. */
function topLevelAlternatives(source: string): string[] | null {
  const out: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') i++;
    else if (inClass) inClass = ch !== ']';
    else if (ch === '[') inClass = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      out.push(source.slice(start, i));
      start = i + 1;
    }
    if (depth < 0) return null;
  }
  if (depth !== 0 || inClass) return null;
  out.push(source.slice(start));
  return out;
}

/** The end of the group opened at `open` (its closing paren's index), or -1. */
function groupEnd(source: string, open: number): number {
  let depth = 0;
  let inClass = false;
  for (let i = open; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') i++;
    else if (inClass) inClass = ch !== ']';
    else if (ch === '[') inClass = true;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i;
  }
  return -1;
}

/** What one compiled route expression could match (see Reach); null when not understood. */
export function reachOf(regexp: RegExp): Reach[] | null {
  const source = regexp.source;
  if (!source.startsWith('^')) return null;
  const body = source.slice(1);
  const top = topLevelAlternatives(body);
  if (!top || top.length !== 1) return null;
  if (!body.startsWith('(?:')) {
    const lit = leadingLiteral(body);
    return [{ prefix: lit.text }];
  }
  // @koa/router's shape: ^(?:alt|alt...)(?:\/$)?$ or ^(?:alt)<more>
  const close = groupEnd(body, 0);
  if (close < 0) return null;
  const after = body.slice(close + 1);
  if (/^[?*{]/.test(after)) return null; // the whole group is optional
  const alternatives = topLevelAlternatives(body.slice(3, close));
  if (!alternatives) return null;
  const exactTail = after === '(?:\\/$)?$' || after === '$';
  return alternatives.map((alt) => {
    const lit = leadingLiteral(alt);
    return lit.whole && exactTail ? { exact: lit.text } : { prefix: lit.text };
  });
}

/** Whether `path` could reach one of `reaches`; lower-cased on both sides (routes are case-insensitive by default). */
function reachable(path: string, reaches: readonly (Reach | null)[]): boolean {
  const p = path.toLowerCase();
  for (const r of reaches) {
    if (r === null) return true;
    if ('exact' in r ? p === r.exact || p === `${r.exact}/` : p.startsWith(r.prefix)) return true;
  }
  return false;
}

/**
 * One middleware for the routers, in order (each one's routes() then allowedMethods(), as
 * app.use of each would), entered only when the request path could match one of their
 * layers; any other request goes straight on.
 */
export function routeGate(routers: Router[]): Middleware {
  // null: this layer could match any path.
  const reaches: (Reach | null)[] = [];
  for (const router of routers) {
    for (const layer of router.stack) {
      const r = layer.regexp instanceof RegExp ? reachOf(layer.regexp) : null;
      if (r === null) reaches.push(null);
      else reaches.push(...r.map((x) => ('prefix' in x && x.prefix === '' ? null : x)));
    }
  }
  const chain = routers.flatMap((r) => [r.routes(), r.allowedMethods()]) as Middleware[];
  const run = (c: Context, next: Next, i: number): Promise<unknown> => (i === chain.length ? next() : Promise.resolve(chain[i]!(c, () => run(c, next, i + 1))));
  return async function routes(c: Context, next: Next): Promise<void> {
    if (reachable(c.path, reaches)) await run(c, next, 0);
    else await next();
  };
}
