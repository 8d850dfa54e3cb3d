/**
 * A minimal HTTP user agent for integration tests: real HTTP via fetch, a cookie jar,
 * manual redirects (so tests see every hop), and form scraping from the real pages.
 *
 *   const ua = new UserAgent();
 *   const page = await ua.get(url);                  // one hop
 *   const final = await ua.follow(url, stopAt);      // follow redirects until stopAt(url)
 *   const form = ua.form(page.body, 'login');        // { action, fields }
 */
export interface Hop {
  status: number;
  url: string;
  location: string | null;
  headers: Headers;
  body: string;
}

export class UserAgent {
  readonly cookies = new Map<string, string>();
  origin: string | null = null;

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=').slice(1).join('=')) < Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Hop> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin ??= new URL(url).origin;
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.store(res.headers);
    const location = res.headers.get('location');
    return { status: res.status, url, location: location ? new URL(location, url).toString() : null, headers: res.headers, body: await res.text() };
  }

  get(url: string): Promise<Hop> {
    return this.request(url);
  }

  post(url: string, form: Record<string, string>, headers?: Record<string, string>): Promise<Hop> {
    return this.request(url, { form, headers });
  }

  /** Follows redirects from `hop` until one points at a URL for which `stop` is true (returned, not fetched) or a page is reached. */
  async follow(start: Hop | string, stop: (url: string) => boolean = () => false, max = 15): Promise<{ hop: Hop; stoppedAt: string | null }> {
    let hop = typeof start === 'string' ? await this.get(start) : start;
    for (let i = 0; i < max; i++) {
      if (!hop.location || hop.status < 300 || hop.status >= 400) return { hop, stoppedAt: null };
      if (stop(hop.location)) return { hop, stoppedAt: hop.location };
      hop = await this.get(hop.location);
    }
    throw new Error(`too many redirects from ${hop.url}`);
  }

  /** Reads a form from a page: the one whose action contains `actionPart`. */
  form(html: string, actionPart: string): { action: string; fields: Record<string, string> } {
    const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
    for (const [, attrs, inner] of forms) {
      const action = /action="([^"]*)"/.exec(attrs!)?.[1];
      if (!action || !decode(action).includes(actionPart)) continue;
      const fields: Record<string, string> = {};
      for (const [, input] of inner!.matchAll(/<input\b([^>]*)>/g)) {
        const name = /name="([^"]*)"/.exec(input!)?.[1];
        const value = /value="([^"]*)"/.exec(input!)?.[1] ?? '';
        if (name) fields[name] = decode(value);
      }
      return { action: decode(action), fields };
    }
    throw new Error(`no form with action containing ${actionPart}`);
  }
}

export function decode(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#x2F;/g, '/').replace(/&#x27;/g, "'").replace(/&#x3D;/g, '=');
}
