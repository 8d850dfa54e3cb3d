/**
 * The admin console at /admin: server-rendered pages over the admin JSON API.
 *
 * The console signs the admin in through Gatehouse's own OIDC (authorization code with
 * PKCE, public first-party client `gatehouse-admin-console`) and keeps only the access
 * token, in a signed HttpOnly SameSite=Strict cookie scoped to /admin. Every page then
 * calls the same /admin/api routes automation uses, over loopback HTTP with that token:
 * one implementation of every rule, the API's validation errors (with field paths) shown
 * next to the console's fields, and the API's role checks apply to the console too.
 *
 *   GET  /admin                 -> /admin/access (or sign-in)
 *   GET  /admin/login, /admin/callback, POST /admin/logout
 *   Customer Access, Companies, Services, Denylist, Customers, Simulate, Audit pages
 */
import { createHash, randomBytes } from 'node:crypto';
import { safeEqual } from '../../runtime/secrets.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { GatewayContext } from '../../runtime/context.ts';
import { AppError } from '../../http/errors.ts';
import { formBody } from '../../http/body.ts';
import { csrfToken, requireCsrf } from '../../http/csrf.ts';
import { CONSOLE_CLIENT_ID } from '../../oidc/clients.ts';

const SESSION_COOKIE = 'gh.admin';
const TX_COOKIE = 'gh.admin.tx';

interface ApiReply {
  status: number;
  body: Record<string, unknown> & { error?: string; message?: string; details?: Array<{ path: (string | number)[]; message: string }> };
}

type Form = Record<string, string | string[] | undefined>;

const METHODS = ['portal', 'google', 'email', 'activeDirectory'] as const;

/** Maps API validation details to the console's field names (first message per field). */
function fieldErrors(reply: ApiReply): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const d of reply.body.details ?? []) {
    const key = d.path.join('.');
    errors[key] ??= d.message;
  }
  return errors;
}

function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function lines(value: string | string[] | undefined): string[] {
  return list(value).join('\n').split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
}

const on = (form: Form, name: string) => form[name] === 'on' || form[name] === 'true';

export function adminConsoleRoutes(ctx: GatewayContext): Router {
  const router = new Router({ prefix: '/admin' });
  const csrf = requireCsrf(ctx.config.ISSUER);
  const redirectUri = `${ctx.config.ISSUER}/admin/callback`;
  const cookieOpts = (c: Context, maxAge: number) => ({ signed: true, httpOnly: true, sameSite: 'strict' as const, path: '/admin', secure: c.secure, maxAge, overwrite: true });

  /** This process's own listening address: the console talks to the API here, never through the public URL. */
  function internalBase(c: Context): string {
    const { localAddress, localPort } = c.req.socket;
    const host = !localAddress || localAddress === '::' ? '127.0.0.1' : localAddress.replace(/^::ffff:/, '');
    return `http://${host.includes(':') ? `[${host}]` : host}:${localPort}`;
  }

  async function api(c: Context, method: string, path: string, body?: unknown): Promise<ApiReply> {
    const token = c.cookies.get(SESSION_COOKIE, { signed: true });
    if (!token) throw new AppError('admin_signin_required', 401, 'Sign in to the admin console.');
    const res = await fetch(`${internalBase(c)}/admin/api${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as ApiReply['body']) : {};
    if (res.status === 401) {
      c.cookies.set(SESSION_COOKIE, null, cookieOpts(c, 0));
      throw new AppError('admin_signin_required', 401, 'Your admin session has ended. Sign in again.');
    }
    if (res.status === 403) throw new AppError('forbidden', 403, 'Your account may not do this. Ask an account administrator.');
    if (res.status >= 500) throw new AppError('service_unavailable', 503, String(parsed.message ?? 'The admin API is unavailable.'));
    return { status: res.status, body: parsed };
  }

  /** A GET that must succeed: anything else is shown as an error page with the API's message. */
  async function read(c: Context, path: string, query: Record<string, string> = {}): Promise<ApiReply['body']> {
    const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== ''));
    const reply = await api(c, 'GET', params.size ? `${path}?${params}` : path);
    if (reply.status >= 400) throw new AppError(String(reply.body.error ?? 'bad_request'), reply.status, String(reply.body.message ?? 'The request could not be completed.'));
    return reply.body;
  }

  function render(c: Context, view: string, title: string, data: Record<string, unknown>, status = 200): void {
    c.status = status;
    c.type = 'html';
    c.body = ctx.views.render(`admin/${view}`, { title, csrf: csrfToken(c), section: view, notice: null, error: null, errors: {}, warnings: [], ...data });
  }

  // Unsigned-in visitors of any console page go to sign-in.
  router.use(async (c, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof AppError && err.code === 'admin_signin_required' && c.method === 'GET') {
        c.redirect('/admin/login');
        return;
      }
      throw err;
    }
  });

  router.get('/', (c) => c.redirect(c.cookies.get(SESSION_COOKIE, { signed: true }) ? '/admin/access' : '/admin/login'));

  router.get('/login', async (c) => {
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    c.cookies.set(TX_COOKIE, JSON.stringify({ verifier, state }), { ...cookieOpts(c, 10 * 60 * 1000), sameSite: 'lax' });
    const url = new URL(`${ctx.config.ISSUER}/auth`);
    url.search = new URLSearchParams({
      client_id: CONSOLE_CLIENT_ID,
      response_type: 'code',
      scope: 'openid email profile admin',
      redirect_uri: redirectUri,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    c.redirect(url.toString());
  });

  router.get('/callback', async (c) => {
    const raw = c.cookies.get(TX_COOKIE, { signed: true });
    c.cookies.set(TX_COOKIE, null, { ...cookieOpts(c, 0), sameSite: 'lax' });
    const tx = raw ? (JSON.parse(raw) as { verifier: string; state: string }) : null;
    const state = typeof c.query.state === 'string' ? c.query.state : '';
    if (!tx || !state || !safeEqual(state, tx.state)) throw new AppError('invalid_state', 400, 'This sign-in could not be verified. Start again from /admin.');
    if (typeof c.query.error === 'string') throw new AppError('signin_failed', 400, 'Sign-in was cancelled or refused.');
    const code = typeof c.query.code === 'string' ? c.query.code : '';
    const res = await fetch(`${internalBase(c)}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: CONSOLE_CLIENT_ID, code_verifier: tx.verifier }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const tokens = (await res.json()) as { access_token?: string; expires_in?: number };
    if (!res.ok || !tokens.access_token) throw new AppError('signin_failed', 400, 'Sign-in could not be completed. Start again from /admin.');
    c.cookies.set(SESSION_COOKIE, tokens.access_token, cookieOpts(c, (tokens.expires_in ?? 900) * 1000));
    c.redirect('/admin/access');
  });

  router.post('/logout', formBody, csrf, async (c) => {
    c.cookies.set(SESSION_COOKIE, null, cookieOpts(c, 0));
    c.redirect(`${ctx.config.ISSUER}/session/end?client_id=${CONSOLE_CLIENT_ID}`);
  });

  // ---- Customer Access -------------------------------------------------------------
  async function accessPage(c: Context, extra: Record<string, unknown> = {}, status = 200) {
    const [policy, services, ad] = await Promise.all([read(c, '/policy'), read(c, '/services'), read(c, '/active-directory')]);
    render(c, 'access', 'Customer access', { policy, services: services.items ?? [], ad, methods: METHODS, ...extra }, status);
  }
  router.get('/access', (c) => accessPage(c));
  router.post('/access', formBody, csrf, async (c) => {
    const f = c.request.body as Form;
    const policy = (await read(c, '/policy')) as Record<string, Record<string, unknown>>;
    const enabled = on(f, 'selfRegistrationEnabled');
    const next = {
      selfRegistration: enabled ? (f.mode === 'companies' ? 'companies' : 'anyone') : 'off',
      anyone: {
        portal: on(f, 'portal'),
        google: on(f, 'google'),
        email: on(f, 'email'),
        grantPortalAccess: on(f, 'grantPortalAccess'),
        activeDirectory: on(f, 'activeDirectory'),
        joinCompanyByDomain: on(f, 'joinCompanyByDomain'),
        defaultServices: list(f.defaultServices),
      },
      activeDirectory: { loginUrl: typeof f.adLoginUrl === 'string' && f.adLoginUrl.trim() ? f.adLoginUrl.trim() : null },
      portal: {
        access: f.portalAccess === 'public' ? 'public' : 'registered',
        companyRequestsVisible: on(f, 'companyRequestsVisible'),
        sharing: typeof f.sharing === 'string' ? f.sharing : policy.portal?.sharing,
      },
      version: Number(f.version),
    };
    const saved = await api(c, 'PUT', '/policy', next);
    if (saved.status === 200) return accessPage(c, { notice: 'Saved.', warnings: saved.body.warnings ?? [] });
    if (saved.status === 409) return accessPage(c, { error: 'Someone else saved the policy while you were editing. Review the current settings and save again.' }, 409);
    return accessPage(c, { error: String(saved.body.message ?? 'The settings could not be saved.'), errors: fieldErrors(saved), draft: next }, saved.status);
  });
  router.post('/access/ad-token', formBody, csrf, async (c) => {
    const f = c.request.body as Form;
    const grace = Number(f.graceHours ?? 24);
    const rotated = await api(c, 'POST', '/active-directory/secret-token', { graceSeconds: Math.max(0, Math.round((Number.isFinite(grace) ? grace : 24) * 3600)) });
    if (rotated.status !== 201) return accessPage(c, { error: String(rotated.body.message ?? 'The token could not be rotated.') }, rotated.status);
    return accessPage(c, { notice: 'New secret token generated. Copy it now: it is shown only once.', newToken: rotated.body.secretToken });
  });

  // ---- Services ---------------------------------------------------------------------
  async function servicesPage(c: Context, extra: Record<string, unknown> = {}, status = 200) {
    const services = await read(c, '/services');
    render(c, 'services', 'Services', { services: services.items ?? [], ...extra }, status);
  }
  router.get('/services', (c) => servicesPage(c));
  router.post('/services', formBody, csrf, async (c) => {
    const f = c.request.body as Form;
    const body = { id: String(f.id ?? '').trim(), name: String(f.name ?? '').trim(), requestAccess: String(f.requestAccess ?? 'granted') };
    const r = await api(c, 'POST', '/services', body);
    if (r.status === 201) return servicesPage(c, { notice: `Service ${body.name} added.`, warnings: r.body.warnings ?? [] });
    return servicesPage(c, { error: String(r.body.message), errors: fieldErrors(r), draft: body }, r.status);
  });
  router.post('/services/:id/delete', formBody, csrf, async (c) => {
    const r = await api(c, 'DELETE', `/services/${encodeURIComponent(c.params.id!)}`);
    return servicesPage(c, r.status === 200 ? { notice: 'Service deleted.', warnings: r.body.warnings ?? [] } : { error: String(r.body.message) }, r.status === 200 ? 200 : r.status);
  });

  // ---- Companies --------------------------------------------------------------------
  function companyFromForm(f: Form) {
    return {
      id: String(f.id ?? '').trim(),
      name: String(f.name ?? '').trim(),
      acceptedDomains: lines(f.acceptedDomains),
      allowSubdomains: on(f, 'allowSubdomains'),
      selfRegistration: { permitted: on(f, 'permitted'), portal: on(f, 'portal'), email: on(f, 'email'), grantPortalAccess: on(f, 'grantPortalAccess') },
      services: list(f.services),
    };
  }
  async function companiesPage(c: Context, extra: Record<string, unknown> = {}, status = 200) {
    const [companies, services] = await Promise.all([read(c, '/companies'), read(c, '/services')]);
    render(c, 'companies', 'Companies', { companies: companies.items ?? [], services: services.items ?? [], ...extra }, status);
  }
  router.get('/companies', (c) => companiesPage(c));
  router.post('/companies', formBody, csrf, async (c) => {
    const body = companyFromForm(c.request.body as Form);
    const r = await api(c, 'POST', '/companies', body);
    if (r.status === 201) return companiesPage(c, { notice: `Company ${body.name} added.`, warnings: r.body.warnings ?? [] });
    return companiesPage(c, { error: String(r.body.message), errors: fieldErrors(r), draft: body }, r.status);
  });
  router.get('/companies/:id', async (c) => {
    const [company, services, employees] = await Promise.all([
      read(c, `/companies/${encodeURIComponent(c.params.id!)}`),
      read(c, '/services'),
      read(c, `/companies/${encodeURIComponent(c.params.id!)}/customers`),
    ]);
    render(c, 'company', `Company ${String(company.name ?? '')}`, { company, services: services.items ?? [], employees: employees.items ?? [] });
  });
  router.post('/companies/:id', formBody, csrf, async (c) => {
    const body = { ...companyFromForm(c.request.body as Form), id: c.params.id! };
    const r = await api(c, 'PUT', `/companies/${encodeURIComponent(c.params.id!)}`, body);
    const services = await read(c, '/services');
    const employees = await read(c, `/companies/${encodeURIComponent(c.params.id!)}/customers`);
    if (r.status === 200) {
      return render(c, 'company', `Company ${body.name}`, { company: r.body.company, services: services.items ?? [], employees: employees.items ?? [], notice: 'Saved.', warnings: r.body.warnings ?? [] });
    }
    return render(c, 'company', `Company ${body.name}`, { company: body, services: services.items ?? [], employees: employees.items ?? [], error: String(r.body.message), errors: fieldErrors(r) }, r.status);
  });
  router.post('/companies/:id/delete', formBody, csrf, async (c) => {
    const r = await api(c, 'DELETE', `/companies/${encodeURIComponent(c.params.id!)}`);
    return companiesPage(c, r.status === 200 ? { notice: 'Company deleted.', warnings: r.body.warnings ?? [] } : { error: String(r.body.message) }, r.status === 200 ? 200 : r.status);
  });

  // ---- Denylist ---------------------------------------------------------------------
  async function denylistPage(c: Context, extra: Record<string, unknown> = {}, status = 200) {
    const search = typeof c.query.search === 'string' ? c.query.search : '';
    const offset = Math.max(0, Number(c.query.offset ?? 0) || 0);
    const page = await read(c, '/denylist', { search, offset: String(offset), limit: '50' });
    render(c, 'denylist', 'Denylist', { page, search, offset, ...extra }, status);
  }
  router.get('/denylist', (c) => denylistPage(c));
  router.post('/denylist', formBody, csrf, async (c) => {
    const entries = lines((c.request.body as Form).entries);
    const r = await api(c, 'POST', '/denylist', { entries });
    if (r.status === 200 || r.status === 201) return denylistPage(c, { notice: `${String(r.body.added)} of ${String(r.body.received)} entries added.`, warnings: r.body.warnings ?? [] });
    return denylistPage(c, { error: String(r.body.message), errors: fieldErrors(r), draft: entries.join('\n') }, r.status);
  });
  router.post('/denylist/remove', formBody, csrf, async (c) => {
    const value = String((c.request.body as Form).value ?? '');
    const r = await api(c, 'DELETE', `/denylist/${encodeURIComponent(value)}`);
    return denylistPage(c, r.status === 204 ? { notice: `${value} removed.` } : { error: String(r.body.message ?? 'Not removed.') }, r.status === 204 ? 200 : r.status);
  });

  // ---- Customers --------------------------------------------------------------------
  async function customersPage(c: Context, extra: Record<string, unknown> = {}, status = 200) {
    const search = typeof c.query.search === 'string' ? c.query.search : '';
    const cursor = typeof c.query.cursor === 'string' ? c.query.cursor : '';
    const page = await read(c, '/customers', { search, limit: '50', cursor });
    render(c, 'customers', 'Customers', { page, search, ...extra }, status);
  }
  router.get('/customers', (c) => customersPage(c));
  router.post('/customers', formBody, csrf, async (c) => {
    const f = c.request.body as Form;
    const body = { email: String(f.email ?? ''), name: String(f.name ?? ''), adminOverride: on(f, 'adminOverride') };
    const r = await api(c, 'POST', '/customers', body);
    if (r.status === 201) return customersPage(c, { notice: `Customer ${body.email} added.` });
    const decision = r.body.decision as { reason?: string } | undefined;
    return customersPage(c, { error: String(r.body.message ?? 'Not added.'), errors: fieldErrors(r), draft: body, reason: decision?.reason ?? r.body.error }, r.status);
  });
  router.post('/customers/:id/delete-and-deny', formBody, csrf, async (c) => {
    const r = await api(c, 'POST', `/customers/${encodeURIComponent(c.params.id!)}/delete-and-deny`, {});
    return customersPage(c, r.status === 200 ? { notice: `Deleted and denylisted ${String(r.body.denylisted)}.` } : { error: String(r.body.message) }, r.status === 200 ? 200 : r.status);
  });
  router.post('/customers/:id/status', formBody, csrf, async (c) => {
    const status = (c.request.body as Form).status === 'active' ? 'active' : 'disabled';
    const r = await api(c, 'PATCH', `/customers/${encodeURIComponent(c.params.id!)}`, { status });
    return customersPage(c, r.status === 200 ? { notice: status === 'disabled' ? 'Customer disabled; their sessions and tokens have ended.' : 'Customer enabled.' } : { error: String(r.body.message) }, r.status === 200 ? 200 : r.status);
  });

  // ---- Simulate and Audit -----------------------------------------------------------
  router.get('/simulate', (c) => render(c, 'simulate', 'Simulate a sign-up', { methods: [...METHODS, 'agent'], draft: { method: 'portal', email: '', emailVerified: true }, decision: null }));
  router.post('/simulate', formBody, csrf, async (c) => {
    const f = c.request.body as Form;
    const body = { method: String(f.method ?? 'portal'), email: String(f.email ?? ''), emailVerified: on(f, 'emailVerified') };
    const r = await api(c, 'POST', '/policy/simulate', body);
    render(c, 'simulate', 'Simulate a sign-up', { methods: [...METHODS, 'agent'], draft: body, decision: r.status === 200 ? r.body : null, error: r.status === 200 ? null : String(r.body.message), errors: fieldErrors(r) }, r.status === 200 ? 200 : r.status);
  });
  router.get('/audit', async (c) => {
    const action = typeof c.query.action === 'string' ? c.query.action : '';
    const cursor = typeof c.query.cursor === 'string' ? c.query.cursor : '';
    const page = await read(c, '/audit', { limit: '50', action, cursor });
    render(c, 'audit', 'Audit log', { page, action });
  });

  return router;
}
