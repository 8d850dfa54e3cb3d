/**
 * Pages that start a browser flow of their own are served on the issuer's host only.
 *
 * The admin console (and the sample portal) keep their sign-in transaction in a cookie
 * on the host the browser used, while the OIDC flow returns to the issuer's host: opened
 * at http://127.0.0.1:3000 while ISSUER is http://localhost:3000, the callback lands on
 * another host, finds no cookie and fails with `invalid_state`. So a GET or HEAD of one of
 * those pages on another name of the same listener is redirected to the issuer's host
 * first, before any cookie is set.
 *
 * What is NOT redirected, on purpose: the OIDC endpoints (discovery, /token, /me, /jwks
 * ... are called by servers, some by IP, and a redirect would break them or leak
 * credentials across hosts), the admin API (bearer tokens, no cookies), and the
 * interaction pages (a flow already under way keeps its cookies on the host it started
 * on; moving it mid-flow would lose them).
 *
 * Only a request that reached the same port under another name is redirected
 * (127.0.0.1 vs localhost, an IP vs a LAN name). A request on another port came through
 * something in between (a proxy, a container port mapping) whose Host header we do not
 * control: redirecting it could loop, so it is left alone.
 *
 *   app.use(issuerHostRedirect(config.ISSUER, { pages: ['/', '/admin'], except: ['/admin/api'] }));
 */
import type { Context, Next } from 'koa';

export interface IssuerHostPages {
  /** Path prefixes redirected ('/' means the root page only). */
  pages: string[];
  /** Path prefixes under `pages` left alone. */
  except?: string[];
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

function under(path: string, prefix: string): boolean {
  if (prefix === '/') return path === '/';
  return path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

/** The request's host name and effective port, or null when the Host header is unusable. */
function requestHost(c: Context): { hostname: string; port: string } | null {
  const url = URL.parse(`${c.protocol}://${c.host}`);
  if (!url || !c.host) return null;
  return { hostname: url.hostname.toLowerCase(), port: url.port || DEFAULT_PORT[url.protocol] || '' };
}

export function issuerHostRedirect(issuer: string, { pages, except = [] }: IssuerHostPages) {
  const target = new URL(issuer);
  const issuerHostname = target.hostname.toLowerCase();
  const issuerPort = target.port || DEFAULT_PORT[target.protocol] || '';
  const base = issuer.replace(/\/+$/, '');
  return async function redirectToIssuerHost(c: Context, next: Next): Promise<void> {
    if ((c.method === 'GET' || c.method === 'HEAD') && pages.some((p) => under(c.path, p)) && !except.some((p) => under(c.path, p))) {
      const seen = requestHost(c);
      if (seen && seen.hostname !== issuerHostname && seen.port === issuerPort) {
        c.status = 302;
        c.redirect(`${base}${c.originalUrl}`);
        return;
      }
    }
    await next();
  };
}
