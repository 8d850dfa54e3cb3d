/**
 * Portal clients (issue 15): create, edit and delete the OIDC clients portals sign in
 * with, rotate their secret, and set their branding; plus the deployment's own branding
 * (pages reached without a client). Every write goes to the store, is audited with
 * before/after (never a secret), and reaches every gateway process through the client
 * registry's reload broadcast (gateway/oidc/clients.ts).
 *
 *   POST /clients                 { client_id, redirect_uris, ... }   201 + client_secret (shown once)
 *   PUT  /clients/:id             the whole metadata (optional `version`: 409 when stale)
 *   POST /clients/:id/secret      { graceSeconds }  new secret (shown once); the previous one works until then
 *   PUT  /clients/:id/branding    { displayName, primaryColor, supportEmail, privacyUrl, termsUrl }
 *   PUT  /clients/:id/logo        { data: <base64 PNG/JPEG/WebP> }
 *   GET/PUT /branding, PUT/DELETE /branding/logo    the deployment's own branding
 *
 * What is checked before a write: the metadata's shape (zod, as CLIENTS_FILE), that the
 * bound service exists, and what oidc-provider itself would refuse (Client.validate),
 * so a saved client is always one the providers can load.
 */
import * as z from 'zod';
import { StoreConflictError, type PortalBranding, type PortalClientRecord } from '../../../adapters/store.ts';
import { AppError, notFound } from '../../http/errors.ts';
import { validationFailed } from '../../http/validation.ts';
import { hashSecret } from '../../runtime/secrets.ts';
import { CLIENT_ID, ClientMetadataFields, isPublicClient, newClientSecret, oidcMetadata, type ClientMetadataInput } from '../../oidc/clients.ts';
import { BrandingInput, BrandingView, DEPLOYMENT_BRANDING_KEY, inspectLogo, logoOwner, mergeBranding } from '../../oidc/branding.ts';
import { defineRoute, zodBody, type AdminDeps, type AdminRoute } from './route.ts';
import { ErrorBody, issue, RotateSecretBody } from './schemas.ts';

export const DEFAULT_CLIENT_GRACE_SECONDS = 24 * 3600;

const ClientParams = z.strictObject({ id: CLIENT_ID });
const CreateBody = z.strictObject({ client_id: CLIENT_ID, ...ClientMetadataFields, branding: BrandingInput.optional() });
const ReplaceBody = z.strictObject({ ...ClientMetadataFields, branding: BrandingInput.optional(), version: z.number().int().min(1).optional() });
const LogoBody = z.strictObject({ data: z.base64().max(Math.ceil((256 * 1024 * 4) / 3) + 4) });

/** A 1x1 PNG: the documented logo example. */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

export const ClientView = z.object({
  client_id: z.string(),
  ...Object.fromEntries(Object.entries(ClientMetadataFields).map(([k, v]) => [k, (v as z.ZodType).optional()])),
  branding: BrandingView,
  /** False for a public client (token_endpoint_auth_method "none"): no secret. */
  confidential: z.boolean(),
  /** Until when the previous secret is still accepted (after a rotation), or null. */
  previous_secret_expires_at: z.string().nullable(),
  /** file: seeded from CLIENTS_FILE and following it; admin: the admins'; demo: the generated demo client. */
  source: z.enum(['file', 'admin', 'demo']),
  version: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ClientView = z.infer<typeof ClientView>;

/** What the API shows of a stored client: never a secret or its hash. */
export function clientView(record: PortalClientRecord, now = Date.now()): ClientView {
  const previous = record.previousSecret && new Date(record.previousSecret.expiresAt).getTime() > now ? new Date(record.previousSecret.expiresAt).toISOString() : null;
  return {
    client_id: record.id,
    ...record.metadata,
    branding: record.branding,
    confidential: record.secretHash !== null,
    previous_secret_expires_at: previous,
    source: record.source,
    version: record.version,
    created_at: new Date(record.createdAt).toISOString(),
    updated_at: new Date(record.updatedAt).toISOString(),
  } as ClientView;
}

const ClientResponse = z.object({ client: ClientView });
const WithSecret = z.object({ client: ClientView, client_secret: z.string().optional() });
const DeploymentBranding = z.object({ branding: BrandingView });

export function clientRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;

  async function existing(id: string): Promise<PortalClientRecord> {
    const found = await gw.store.clients.get(id);
    if (!found) throw notFound(`No client "${id}".`);
    return found;
  }

  /** The checks beyond the schema: the bound service exists, and oidc-provider accepts the metadata. */
  async function checkMetadata(id: string, metadata: ClientMetadataInput, secretHash: string | null): Promise<void> {
    if (metadata.service !== undefined && !gw.policy.current().servicesById.has(metadata.service)) {
      throw validationFailed([issue(['service'], 'unknown_service', `no service "${metadata.service}": create it first, or leave the client unbound`)]);
    }
    const probe = oidcMetadata({ id, metadata, secretHash: secretHash ?? (isPublicClient(metadata) ? null : 'probe'), branding: {}, previousSecret: null, source: 'admin', seedHash: null, version: 1, createdAt: new Date(), updatedAt: new Date() });
    try {
      await (gw.provider.Client as unknown as { validate(m: unknown): Promise<void> }).validate(probe);
    } catch (err) {
      const e = err as { error_description?: string; message?: string };
      throw validationFailed([issue([], 'invalid_client_metadata', e.error_description ?? e.message ?? 'the metadata is not valid')]);
    }
  }

  /** Saves at the next version (409 when someone saved meanwhile), then every process reloads. */
  async function save(next: PortalClientRecord): Promise<PortalClientRecord> {
    let saved: PortalClientRecord | null;
    try {
      saved = await gw.store.clients.replace(next);
    } catch (err) {
      if (err instanceof StoreConflictError) throw new AppError('version_conflict', 409, 'The client was changed by someone else meanwhile. Load it again and redo the change.');
      throw err;
    }
    if (!saved) throw notFound(`No client "${next.id}".`);
    await gw.clients.changed();
    return saved;
  }

  function splitBody<T extends { branding?: BrandingInput; version?: number }>(body: T): { metadata: ClientMetadataInput; branding: BrandingInput | undefined } {
    const { branding, version: _version, ...metadata } = body;
    return { metadata: metadata as unknown as ClientMetadataInput, branding };
  }

  async function deploymentBranding(): Promise<PortalBranding> {
    return (await gw.store.settings.get<PortalBranding>(DEPLOYMENT_BRANDING_KEY)) ?? {};
  }

  return [
    defineRoute({
      name: 'listClients',
      method: 'get',
      path: '/clients',
      summary: 'Every portal client (OIDC metadata, branding; never a secret)',
      roles: ['admin'],
      responses: { 200: { description: 'The clients', schema: z.object({ items: z.array(ClientView) }) } },
      async handle() {
        return { body: { items: (await gw.store.clients.list()).map((c) => clientView(c)) } };
      },
    }),
    defineRoute({
      name: 'createClient',
      method: 'post',
      path: '/clients',
      summary: 'Create a portal client; a confidential one gets a secret, shown only in this answer',
      roles: ['admin'],
      body: zodBody(CreateBody, {
        client_id: 'probe-value',
        client_name: 'Customer portal',
        redirect_uris: ['https://portal.example.com/callback'],
        post_logout_redirect_uris: ['https://portal.example.com/'],
        web_origins: ['https://portal.example.com'],
        first_party: true,
        access_token_ttl: 600,
        branding: { displayName: 'Acme Support', primaryColor: '#1d4ed8', supportEmail: 'support@acme.example', privacyUrl: 'https://acme.example/privacy' },
      }),
      responses: {
        201: { description: 'Created; `client_secret` only for a confidential client, and only here', schema: WithSecret },
        409: { description: 'client_exists: the id is taken (or reserved)', schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ body, principal, koa }) {
        const { client_id: id, ...rest } = body;
        const { metadata, branding } = splitBody(rest);
        if (gw.clients.reserved.has(id)) throw new AppError('client_exists', 409, `The client id "${id}" is reserved.`);
        const secret = isPublicClient(metadata) ? null : newClientSecret();
        const secretHash = secret === null ? null : hashSecret(secret);
        await checkMetadata(id, metadata, secretHash);
        const now = new Date();
        const record: PortalClientRecord = {
          id, metadata, branding: mergeBranding({}, branding ?? {}), secretHash, previousSecret: null,
          source: 'admin', seedHash: null, version: 1, createdAt: now, updatedAt: now,
        };
        try {
          await gw.store.clients.create(record);
        } catch (err) {
          if (err instanceof StoreConflictError) throw new AppError('client_exists', 409, `A client with id "${id}" already exists.`);
          throw err;
        }
        await gw.clients.changed();
        await gw.audit('client.create', { actor: principal.actor, target: id, before: null, after: clientView(record) });
        koa.set('Pragma', 'no-cache');
        return { status: 201, body: { client: clientView(record), ...(secret ? { client_secret: secret } : {}) } };
      },
    }),
    defineRoute({
      name: 'getClient',
      method: 'get',
      path: '/clients/:id',
      summary: 'One portal client',
      roles: ['admin'],
      params: ClientParams,
      responses: { 200: { description: 'The client', schema: ClientView }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params }) {
        return { body: clientView(await existing(params.id)) };
      },
    }),
    defineRoute({
      name: 'replaceClient',
      method: 'put',
      path: '/clients/:id',
      summary: 'Replace a client\'s metadata (fields left out fall back to the defaults); `version` guards against concurrent edits',
      roles: ['admin'],
      params: ClientParams,
      body: zodBody(ReplaceBody, { client_name: 'Customer portal', redirect_uris: ['https://portal.example.com/callback'], service: 'probe-value', id_token_signed_response_alg: 'RS256', id_token_claims: ['email', 'name'] }),
      responses: {
        200: { description: 'Saved; `client_secret` when the client became confidential (shown only here)', schema: WithSecret },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'version_conflict', schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ params, body, principal, koa }) {
        const before = await existing(params.id);
        if (body.version !== undefined && body.version !== before.version) {
          throw new AppError('version_conflict', 409, 'The client was changed by someone else meanwhile. Load it again and redo the change.');
        }
        const { metadata, branding } = splitBody(body);
        // Public <-> confidential: a client that needs a secret and has none gets one (shown once).
        let secret: string | null = null;
        let secretHash = before.secretHash;
        let previousSecret = before.previousSecret;
        if (isPublicClient(metadata)) {
          secretHash = null;
          previousSecret = null;
        } else if (secretHash === null) {
          secret = newClientSecret();
          secretHash = hashSecret(secret);
        }
        await checkMetadata(params.id, metadata, secretHash);
        const saved = await save({
          ...before, metadata, branding: branding ? mergeBranding(before.branding, branding) : before.branding,
          secretHash, previousSecret, source: before.source === 'demo' ? 'demo' : 'admin', version: before.version + 1, updatedAt: new Date(),
        });
        await gw.audit('client.update', { actor: principal.actor, target: params.id, before: clientView(before), after: clientView(saved) });
        if (secret) koa.set('Pragma', 'no-cache');
        return { body: { client: clientView(saved), ...(secret ? { client_secret: secret } : {}) } };
      },
    }),
    defineRoute({
      name: 'deleteClient',
      method: 'delete',
      path: '/clients/:id',
      summary: 'Delete a portal client: its tokens stop working at once (a CLIENTS_FILE entry seeds it again at the next start)',
      roles: ['admin'],
      params: ClientParams,
      responses: { 200: { description: 'Deleted', schema: z.object({ deleted: z.string() }) }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params, principal }) {
        const before = await existing(params.id);
        if (!(await gw.store.clients.delete(params.id))) throw notFound(`No client "${params.id}".`);
        if (before.branding.logo) await gw.store.logos.delete(logoOwner(params.id));
        await gw.clients.changed();
        await gw.audit('client.delete', { actor: principal.actor, target: params.id, before: clientView(before), after: null });
        return { body: { deleted: params.id } };
      },
    }),
    defineRoute({
      name: 'rotateClientSecret',
      method: 'post',
      path: '/clients/:id/secret',
      summary: 'Rotate a confidential client\'s secret; the answer is the only time it is shown, the previous one works for `graceSeconds` (default 24 h)',
      roles: ['admin'],
      params: ClientParams,
      body: {
        ...zodBody(RotateSecretBody, { graceSeconds: 3600 }),
        // An empty body means the defaults.
        parse: (raw: unknown) => zodBody(RotateSecretBody, null).parse(raw ?? {}, undefined),
      },
      responses: {
        201: { description: 'The new secret (shown once) and until when the previous one is accepted', schema: z.object({ client_id: z.string(), client_secret: z.string(), previous_secret_expires_at: z.string().nullable() }) },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'public_client: a public client has no secret', schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ params, body, principal, koa }) {
        const before = await existing(params.id);
        if (before.secretHash === null) throw new AppError('public_client', 409, 'This client is public (token_endpoint_auth_method "none"): it has no secret to rotate.');
        const graceSeconds = body.graceSeconds ?? DEFAULT_CLIENT_GRACE_SECONDS;
        const secret = newClientSecret();
        const now = new Date();
        const saved = await save({
          ...before,
          secretHash: hashSecret(secret),
          previousSecret: graceSeconds > 0 ? { hash: before.secretHash, expiresAt: new Date(now.getTime() + graceSeconds * 1000) } : null,
          version: before.version + 1,
          updatedAt: now,
        });
        const view = clientView(saved);
        await gw.audit('client.secret_rotate', { actor: principal.actor, target: params.id, data: { graceSeconds, previousSecretExpiresAt: view.previous_secret_expires_at } });
        koa.set('Pragma', 'no-cache');
        return { status: 201, body: { client_id: params.id, client_secret: secret, previous_secret_expires_at: view.previous_secret_expires_at } };
      },
    }),
    defineRoute({
      name: 'putClientBranding',
      method: 'put',
      path: '/clients/:id/branding',
      summary: 'Set a portal\'s branding: given fields replace, empty strings remove (the colour must reach 4.5:1 against white)',
      roles: ['admin'],
      params: ClientParams,
      body: zodBody(BrandingInput, { displayName: 'Acme Support', primaryColor: '#0f766e', supportEmail: 'help@acme.example', termsUrl: 'https://acme.example/terms' }),
      responses: {
        200: { description: 'Saved', schema: ClientResponse },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'version_conflict', schema: ErrorBody },
        422: { description: 'validation_failed (e.g. too little contrast)', schema: ErrorBody },
      },
      async handle({ params, body, principal }) {
        const before = await existing(params.id);
        const saved = await save({ ...before, branding: mergeBranding(before.branding, body), version: before.version + 1, updatedAt: new Date() });
        await gw.audit('client.branding_update', { actor: principal.actor, target: params.id, before: before.branding, after: saved.branding });
        return { body: { client: clientView(saved) } };
      },
    }),
    defineRoute({
      name: 'putClientLogo',
      method: 'put',
      path: '/clients/:id/logo',
      summary: 'Upload a portal\'s logo (base64 of a PNG, JPEG or WebP, at most 256 KiB and 2048 px a side; SVG refused)',
      roles: ['admin'],
      params: ClientParams,
      body: zodBody(LogoBody, { data: PNG_1X1 }),
      responses: {
        200: { description: 'Saved', schema: ClientResponse },
        404: { description: 'not_found', schema: ErrorBody },
        422: { description: 'validation_failed (logo_type, logo_too_large, logo_dimensions)', schema: ErrorBody },
      },
      async handle({ params, body, principal }) {
        const before = await existing(params.id);
        const logo = await storeLogo(params.id, body.data);
        const saved = await save({ ...before, branding: { ...before.branding, logo }, version: before.version + 1, updatedAt: new Date() });
        await gw.audit('client.logo_update', { actor: principal.actor, target: params.id, before: before.branding.logo ?? null, after: logo });
        return { body: { client: clientView(saved) } };
      },
    }),
    defineRoute({
      name: 'deleteClientLogo',
      method: 'delete',
      path: '/clients/:id/logo',
      summary: 'Remove a portal\'s logo (its pages show the deployment\'s)',
      roles: ['admin'],
      params: ClientParams,
      responses: { 200: { description: 'Removed', schema: ClientResponse }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params, principal }) {
        const before = await existing(params.id);
        const { logo: _removed, ...branding } = before.branding;
        const saved = await save({ ...before, branding, version: before.version + 1, updatedAt: new Date() });
        await gw.store.logos.delete(logoOwner(params.id));
        await gw.audit('client.logo_delete', { actor: principal.actor, target: params.id, before: before.branding.logo ?? null, after: null });
        return { body: { client: clientView(saved) } };
      },
    }),
    defineRoute({
      name: 'getBranding',
      method: 'get',
      path: '/branding',
      summary: 'The deployment\'s own branding (pages reached without a portal client, and the fallback of every field a portal leaves empty)',
      roles: ['admin'],
      responses: { 200: { description: 'The branding', schema: DeploymentBranding } },
      async handle() {
        return { body: { branding: await deploymentBranding() } };
      },
    }),
    defineRoute({
      name: 'putBranding',
      method: 'put',
      path: '/branding',
      summary: 'Set the deployment\'s own branding: given fields replace, empty strings remove',
      roles: ['admin'],
      body: zodBody(BrandingInput, { displayName: 'Acme service desk', primaryColor: '#1d4ed8', supportEmail: 'support@acme.example' }),
      responses: { 200: { description: 'Saved', schema: DeploymentBranding }, 422: { description: 'validation_failed', schema: ErrorBody } },
      async handle({ body, principal }) {
        const before = await deploymentBranding();
        const after = mergeBranding(before, body);
        await gw.store.settings.set(DEPLOYMENT_BRANDING_KEY, after);
        await gw.clients.changed();
        await gw.audit('branding.update', { actor: principal.actor, target: 'deployment', before, after });
        return { body: { branding: after } };
      },
    }),
    defineRoute({
      name: 'putBrandingLogo',
      method: 'put',
      path: '/branding/logo',
      summary: 'Upload the deployment\'s logo (same rules as a portal\'s)',
      roles: ['admin'],
      body: zodBody(LogoBody, { data: PNG_1X1 }),
      responses: { 200: { description: 'Saved', schema: DeploymentBranding }, 422: { description: 'validation_failed', schema: ErrorBody } },
      async handle({ body, principal }) {
        const before = await deploymentBranding();
        const logo = await storeLogo(null, body.data);
        const after = { ...before, logo };
        await gw.store.settings.set(DEPLOYMENT_BRANDING_KEY, after);
        await gw.clients.changed();
        await gw.audit('branding.logo_update', { actor: principal.actor, target: 'deployment', before: before.logo ?? null, after: logo });
        return { body: { branding: after } };
      },
    }),
    defineRoute({
      name: 'deleteBrandingLogo',
      method: 'delete',
      path: '/branding/logo',
      summary: 'Remove the deployment\'s logo',
      roles: ['admin'],
      responses: { 200: { description: 'Removed', schema: DeploymentBranding } },
      async handle({ principal }) {
        const { logo: removed, ...after } = await deploymentBranding();
        await gw.store.settings.set(DEPLOYMENT_BRANDING_KEY, after);
        await gw.store.logos.delete(logoOwner(null));
        await gw.clients.changed();
        await gw.audit('branding.logo_delete', { actor: principal.actor, target: 'deployment', before: removed ?? null, after: null });
        return { body: { branding: after } };
      },
    }),
  ];

  /** Checks the bytes (type, size, dimensions) and stores them; returns the branding's logo reference. */
  async function storeLogo(clientId: string | null, base64: string): Promise<NonNullable<PortalBranding['logo']>> {
    const data = new Uint8Array(Buffer.from(base64, 'base64'));
    const checked = await inspectLogo(data);
    if (!checked.ok) throw validationFailed([issue(['data'], checked.code, checked.message)]);
    await gw.store.logos.put(logoOwner(clientId), { contentType: checked.contentType, data, sha256: checked.sha256, updatedAt: new Date() });
    return { sha256: checked.sha256, contentType: checked.contentType };
  }
}

