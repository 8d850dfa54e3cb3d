/**
 * Portals (OIDC clients) and branding: the console's pages over /admin/api/clients and
 * /admin/api/branding.
 *
 *   GET  /admin/clients                  the list and the add form
 *   POST /admin/clients                  add (the secret is shown on the answer page, once)
 *   GET  /admin/clients/:id              edit: settings, branding, logo, secret, delete
 *   POST /admin/clients/:id              save the settings
 *   POST /admin/clients/:id/branding     save the branding
 *   POST /admin/clients/:id/logo         upload a logo (multipart) / .../logo/delete
 *   POST /admin/clients/:id/secret       rotate the secret (shown once)
 *   POST /admin/clients/:id/delete       delete
 *   GET/POST /admin/branding, POST /admin/branding/logo(/delete)   the deployment's own branding
 */
import type { Context } from 'koa';
import { multipartBody, uploadedFiles } from '../../http/body.ts';
import { requireCsrf } from '../../http/csrf.ts';
import { afterWrite, formOf, lines, on, text, type Form, type PageData, type PageGroup } from './page.ts';

/** Logo uploads are checked by the API (256 KiB); the form takes a little more so the API can say why. */
const UPLOAD_LIMIT = 300 * 1024;

/** The settings form -> the API's client metadata. */
function metadataOf(f: Form): Record<string, unknown> {
  const optional = (name: string) => text(f, name) || undefined;
  const ttl = text(f, 'access_token_ttl');
  const claims = lines(f.id_token_claims);
  return {
    client_name: optional('client_name'),
    redirect_uris: lines(f.redirect_uris),
    post_logout_redirect_uris: lines(f.post_logout_redirect_uris),
    web_origins: lines(f.web_origins),
    service: optional('service'),
    first_party: on(f, 'first_party'),
    token_endpoint_auth_method: on(f, 'public') ? 'none' : undefined,
    access_token_ttl: ttl ? Number(ttl) : undefined,
    id_token_signed_response_alg: optional('id_token_signed_response_alg'),
    id_token_claims: claims.length ? claims : undefined,
    default_resource: optional('default_resource'),
    backchannel_logout_uri: optional('backchannel_logout_uri'),
  };
}

function brandingOf(f: Form): Record<string, string> {
  return {
    displayName: text(f, 'displayName'),
    primaryColor: text(f, 'primaryColor'),
    supportEmail: text(f, 'supportEmail'),
    privacyUrl: text(f, 'privacyUrl'),
    termsUrl: text(f, 'termsUrl'),
  };
}

export const clientsPages: PageGroup = (router, kit) => {
  const upload = [multipartBody(UPLOAD_LIMIT), requireCsrf(kit.issuer)];

  async function listPage(c: Context, extra: PageData = {}, status = 200) {
    const [clients, services] = await Promise.all([kit.api.read(c, '/clients'), kit.api.read(c, '/services')]);
    kit.render(c, 'clients', 'Portals', { clients: clients.items ?? [], services: services.items ?? [], ...extra }, status);
  }

  async function clientPage(c: Context, extra: PageData = {}, status = 200) {
    const id = c.params.id!;
    const reply = await kit.api.call(c, 'GET', `/clients/${encodeURIComponent(id)}`);
    if (reply.status === 404) return listPage(c, { error: `No portal "${id}".` }, 404);
    const services = await kit.api.read(c, '/services');
    kit.render(c, 'client', `Portal ${String(reply.body.client_name ?? id)}`, { client: reply.body, services: services.items ?? [], ...extra }, status);
  }

  const path = (c: Context, rest = '') => `/clients/${encodeURIComponent(c.params.id!)}${rest}`;

  router.get('/clients', (c) => listPage(c));

  router.post('/clients', ...kit.form, async (c) => {
    const f = formOf(c);
    const body = { client_id: text(f, 'client_id'), ...metadataOf(f) };
    const reply = await kit.api.call(c, 'POST', '/clients', body);
    if (reply.status === 201) {
      c.params.id = body.client_id;
      return clientPage(c, { notice: 'Portal added.', secret: reply.body.client_secret ?? null });
    }
    const shown = afterWrite(reply, [201], '', { draft: { ...body, redirect_uris: text(f, 'redirect_uris') } });
    return listPage(c, shown.data, shown.status);
  });

  router.get('/clients/:id', (c) => clientPage(c));

  router.post('/clients/:id', ...kit.form, async (c) => {
    const f = formOf(c);
    const reply = await kit.api.call(c, 'PUT', path(c), { ...metadataOf(f), version: Number(text(f, 'version')) || undefined });
    const shown = afterWrite(reply, [200], 'Portal saved.');
    return clientPage(c, { ...shown.data, secret: reply.body.client_secret ?? null }, shown.status);
  });

  router.post('/clients/:id/branding', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'PUT', path(c, '/branding'), brandingOf(formOf(c))), [200], 'Branding saved.');
    return clientPage(c, shown.data, shown.status);
  });

  router.post('/clients/:id/logo', ...upload, async (c) => {
    const file = uploadedFiles(c).logo;
    if (!file) return clientPage(c, { error: 'Choose an image file to upload.' }, 400);
    const shown = afterWrite(await kit.api.call(c, 'PUT', path(c, '/logo'), { data: file.data.toString('base64') }), [200], 'Logo uploaded.');
    return clientPage(c, shown.data, shown.status);
  });

  router.post('/clients/:id/logo/delete', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'DELETE', path(c, '/logo')), [200], 'Logo removed.');
    return clientPage(c, shown.data, shown.status);
  });

  router.post('/clients/:id/secret', ...kit.form, async (c) => {
    const hours = Number(text(formOf(c), 'graceHours') || '24');
    const reply = await kit.api.call(c, 'POST', path(c, '/secret'), { graceSeconds: Number.isFinite(hours) ? Math.round(hours * 3600) : -1 });
    const shown = afterWrite(reply, [201], 'New secret made. Copy it now: it is not shown again.');
    return clientPage(c, { ...shown.data, secret: reply.body.client_secret ?? null, previousUntil: reply.body.previous_secret_expires_at ?? null }, shown.status);
  });

  router.post('/clients/:id/delete', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'DELETE', path(c)), [200], `Portal ${c.params.id} deleted.`);
    return listPage(c, shown.data, shown.status);
  });

  async function brandingPage(c: Context, extra: PageData = {}, status = 200) {
    const reply = await kit.api.read(c, '/branding');
    kit.render(c, 'branding', 'Branding', { branding: reply.branding ?? {}, ...extra }, status);
  }

  router.get('/branding', (c) => brandingPage(c));

  router.post('/branding', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'PUT', '/branding', brandingOf(formOf(c))), [200], 'Branding saved.');
    return brandingPage(c, shown.data, shown.status);
  });

  router.post('/branding/logo', ...upload, async (c) => {
    const file = uploadedFiles(c).logo;
    if (!file) return brandingPage(c, { error: 'Choose an image file to upload.' }, 400);
    const shown = afterWrite(await kit.api.call(c, 'PUT', '/branding/logo', { data: file.data.toString('base64') }), [200], 'Logo uploaded.');
    return brandingPage(c, shown.data, shown.status);
  });

  router.post('/branding/logo/delete', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'DELETE', '/branding/logo'), [200], 'Logo removed.');
    return brandingPage(c, shown.data, shown.status);
  });
};
