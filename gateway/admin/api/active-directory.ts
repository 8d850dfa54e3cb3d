/**
 * Active Directory connector settings: the login URL (part of the policy, so it is
 * saved with the policy's optimistic concurrency and broadcast) and the secret token
 * the on-prem login page signs its assertions with (stored by gateway/signup/active-directory/secrets.ts:
 * getAdSecrets / rotateAdSecret). Rotation answers with the new
 * token once; the previous one stays valid for `graceSeconds` (default 24 hours) so
 * connectors can be updated without an outage. Nothing else ever returns a token.
 */
import * as z from 'zod';
import { DEFAULT_POLICY, parsePolicy } from '../../../policies/index.ts';
import type { Store } from '../../../adapters/store.ts';
import { getAdSecrets, rotateAdSecret } from '../../signup/active-directory/index.ts';
import { relativize } from './configuration.ts';
import { savePolicy } from './policy.ts';
import { defineRoute, zodBody, type AdminDeps, type AdminRoute } from './route.ts';
import { validationFailed } from '../../http/validation.ts';
import { ActiveDirectoryBody, ErrorBody, RotateSecretBody } from './schemas.ts';

export const DEFAULT_GRACE_SECONDS = 24 * 3600;

/** What the admin may see about the connector secret: never a value. */
export async function adSecretState(store: Pick<Store, 'settings'>, now = new Date()): Promise<{ exists: boolean; createdAt: Date | null; previousValidUntil: Date | null }> {
  const secrets = await getAdSecrets(store);
  const previous = secrets.previous && secrets.previous.expiresAt.getTime() > now.getTime() ? secrets.previous.expiresAt : null;
  return { exists: secrets.current !== null, createdAt: secrets.current?.createdAt ?? null, previousValidUntil: previous };
}

const SecretState = z.object({ exists: z.boolean(), createdAt: z.string().nullable(), previousValidUntil: z.string().nullable() });
const Settings = z.object({ loginUrl: z.string().nullable(), version: z.number(), secretToken: SecretState });

export function activeDirectoryRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;

  async function settings() {
    const policy = (await gw.store.policy.get()) ?? structuredClone(DEFAULT_POLICY);
    return { loginUrl: policy.activeDirectory.loginUrl, version: policy.version, secretToken: await adSecretState(gw.store) };
  }

  return [
    defineRoute({
      name: 'getActiveDirectory',
      method: 'get',
      path: '/active-directory',
      summary: 'The AD login URL and whether a secret token exists (never the token)',
      roles: ['admin'],
      responses: { 200: { description: 'Settings', schema: Settings } },
      async handle() {
        return { body: await settings() };
      },
    }),
    defineRoute({
      name: 'putActiveDirectory',
      method: 'put',
      path: '/active-directory',
      summary: "Set the AD login URL (saved in the policy; `version` defaults to the current one)",
      roles: ['admin'],
      recentAuth: true,
      body: zodBody(ActiveDirectoryBody, { loginUrl: 'https://ad-login.example:8443/', version: 0 }),
      responses: {
        200: { description: 'Saved', schema: Settings },
        409: { description: 'version_conflict', schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ body, principal }) {
        const current = (await gw.store.policy.get()) ?? structuredClone(DEFAULT_POLICY);
        // Only the login URL changes; the directory's own domains stay as saved.
        const candidate = { ...current, activeDirectory: { ...current.activeDirectory, loginUrl: body.loginUrl }, version: body.version ?? current.version };
        const parsed = parsePolicy(candidate);
        if (!parsed.ok) {
          throw validationFailed(parsed.issues.map((i) => relativize(i, ['activeDirectory'])));
        }
        await savePolicy(deps, parsed.value, principal.actor, 'active_directory.update');
        return { body: await settings() };
      },
    }),
    defineRoute({
      name: 'rotateActiveDirectorySecret',
      method: 'post',
      path: '/active-directory/secret-token',
      summary: 'Rotate the connector secret token; the answer is the only time it is shown',
      roles: ['admin'],
      recentAuth: true,
      body: {
        ...zodBody(RotateSecretBody, { graceSeconds: 3600 }),
        // An empty body means the defaults.
        parse: (raw: unknown) => zodBody(RotateSecretBody, null).parse(raw ?? {}, undefined),
      },
      responses: {
        201: { description: 'The new token (shown once) and until when the previous one is accepted', schema: z.object({ secretToken: z.string(), createdAt: z.string(), previousValidUntil: z.string().nullable() }) },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ body, principal, koa }) {
        const before = await adSecretState(gw.store);
        const graceMs = (body.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
        const secretToken = await rotateAdSecret(gw.store, graceMs);
        const after = await adSecretState(gw.store);
        await gw.audit('active_directory.secret_rotate', { actor: principal.actor, target: 'activeDirectory.secretToken', before, after, data: { graceSeconds: graceMs / 1000 } });
        koa.set('Pragma', 'no-cache');
        return { status: 201, body: { secretToken, createdAt: after.createdAt, previousValidUntil: after.previousValidUntil } };
      },
    }),
  ];
}
