/**
 * gateway/admin/console/: the admin console at /admin, server-rendered pages over the
 * admin JSON API. Here live the sign-in (session.ts: OIDC authorization code with PKCE
 * against Gatehouse itself, the transaction kept server-side), the session cookie, the
 * API client every page uses (api-client.ts), the page kit (page.ts) and one module per
 * page group (access, companies, services, denylist, customers, simulate, audit,
 * security: the admin's own second factors). Pages
 * never touch the store or the policy engine: every read and write goes through
 * /admin/api over loopback HTTP with the admin's own token, so the API's validation
 * (field paths shown next to the fields), role checks and audit apply to the console
 * too. It may import gateway/http/ (errors, body, CSRF), gateway/runtime/ (context
 * types, secrets), gateway/oidc/clients.ts (the console's client id) and the store port
 * (its one-time tokens hold sign-in transactions); never gateway/admin/api/ internals.
 *
 *   GET  /admin                 -> /admin/access (or sign-in)
 *   GET  /admin/login, /admin/callback, POST /admin/logout
 *   Customer access, Companies, Services, Portals (clients and branding), Denylist, Customers, Simulate, Audit, Security pages
 *
 * A new page group: a module exporting a `PageGroup` (page.ts), added to PAGE_GROUPS.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { GatewayContext } from '../../runtime/context.ts';
import { formBody } from '../../http/body.ts';
import { csrfToken, requireCsrf } from '../../http/csrf.ts';
import { accessPages } from './access.ts';
import { consoleApi } from './api-client.ts';
import { auditPages } from './audit.ts';
import { clientsPages } from './clients.ts';
import { companiesPages } from './companies.ts';
import { customersPages } from './customers.ts';
import { denylistPages } from './denylist.ts';
import { flashWarnings, type ConsoleKit, type PageData, type PageGroup } from './page.ts';
import { securityPages } from './security.ts';
import { servicesPages } from './services.ts';
import { restoreForm, sessionRoutes, signInWhenNeeded } from './session.ts';
import { setFlash, takeFlash } from './session-cookie.ts';
import { simulatePages } from './simulate.ts';
import { googleEnabled } from '../../signup/google/index.ts';

/** The console's sections, in navigation order. */
const PAGE_GROUPS: readonly PageGroup[] = [accessPages, companiesPages, servicesPages, clientsPages, denylistPages, customersPages, simulatePages, auditPages, securityPages];

export function adminConsoleRoutes(gw: Pick<GatewayContext, 'config' | 'store' | 'views' | 'limits'>): Router {
  const router = new Router({ prefix: '/admin' });
  // What the deployment configured (Customer access says what to set for the rest).
  const configured = { google: googleEnabled(gw.config), ldap: Boolean(gw.config.LDAP_URL) };
  const kit: ConsoleKit = {
    api: consoleApi,
    form: [formBody, requireCsrf(gw.config.ISSUER)],
    issuer: gw.config.ISSUER,
    render(c: Context, view: string, title: string, data: PageData, status = 200) {
      const flash = takeFlash(c);
      c.status = status;
      c.type = 'html';
      c.body = gw.views.render(`admin/${view}`, { title, csrf: csrfToken(c), section: view, notice: null, error: null, errors: {}, warnings: [], configured, ...flash, ...data });
    },
    done(c: Context, location: string, notice: string, warnings?: unknown) {
      setFlash(c, { notice, warnings: flashWarnings(warnings) });
      c.status = 303;
      c.redirect(location);
    },
    restored: (c: Context) => restoreForm(gw, c),
  };
  router.use(signInWhenNeeded(gw));
  sessionRoutes(router, gw, kit.form);
  for (const group of PAGE_GROUPS) group(router, kit);
  return router;
}
