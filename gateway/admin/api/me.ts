/**
 * The caller's own second factors (admins and agents signed in as themselves; an
 * automation client has none): TOTP app, passkeys, recovery codes. Every route here is
 * reachable without a second factor when ADMIN_SECOND_FACTOR=required (that is how one
 * is set up), and every change needs a recent sign-in (ADMIN_REAUTH_MAX_AGE_S), so a
 * session left open cannot quietly add its own factor or take the owner's away.
 *
 *   GET    /me/second-factors                     what is enrolled (never a secret)
 *   POST   /me/second-factors/totp                a new secret: otpauth URI and QR code (pending)
 *   POST   /me/second-factors/totp/confirm        the app's first code makes it the account's
 *   DELETE /me/second-factors/totp
 *   POST   /me/second-factors/passkeys/options    WebAuthn registration options
 *   POST   /me/second-factors/passkeys            the authenticator's answer, and a name
 *   DELETE /me/second-factors/passkeys/:id
 *   POST   /me/second-factors/recovery-codes      ten new codes (the old ones stop working)
 *
 * Recovery codes come back once, when the first factor is enrolled or new ones are made;
 * only their hashes are kept. The checks themselves: gateway/runtime/second-factor.ts.
 */
import * as z from 'zod';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import { AppError, notFound } from '../../http/errors.ts';
import { secondFactors } from '../../runtime/second-factor.ts';
import type { AdminPrincipal } from './auth.ts';
import { defineRoute, zodBody, type AdminDeps, type AdminRoute } from './route.ts';
import { ErrorBody, issue } from './schemas.ts';
import { validationFailed } from '../../http/validation.ts';

const Summary = z.object({
  totp: z.boolean(),
  passkeys: z.array(z.object({ id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() })),
  recoveryCodesLeft: z.number().int(),
  /** ADMIN_SECOND_FACTOR=required. */
  required: z.boolean(),
  /** The current sign-in used a second factor. */
  usedAtSignIn: z.boolean(),
});
const RecoveryCodes = z.object({ recoveryCodes: z.array(z.string()).nullable() });
const CodeBody = z.strictObject({ code: z.string().min(1).max(16) });
const PasskeyBody = z.strictObject({
  name: z.string().max(60).default(''),
  response: z.object({
    id: z.string().max(1024),
    rawId: z.string().max(1024),
    type: z.literal('public-key'),
    response: z.object({ clientDataJSON: z.string().max(8192), attestationObject: z.string().max(16_384) }).passthrough(),
  }).passthrough(),
});
const PasskeyParams = z.strictObject({ id: z.string().min(1).max(1024) });

/** The person behind the token: clients have no second factor of their own. */
function personOf(principal: AdminPrincipal): string {
  if (!principal.customerId) throw new AppError('forbidden', 403, 'Second factors belong to people: sign in as yourself.');
  return principal.customerId;
}

const invalidCode = () => validationFailed([issue(['code'], 'invalid_code', 'that code is not valid (or was already used): enter the current one from the app')], 'The code did not match.');

export function meRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;
  const factors = secondFactors({ store: gw.store, issuer: gw.config.ISSUER, cookieKeys: gw.keys.cookieKeys });
  const audit = (action: string, principal: AdminPrincipal, data?: Record<string, unknown>) => gw.audit(action, { actor: principal.actor, target: principal.customerId ?? undefined, data });
  const common = { roles: ['admin', 'agent'] as const, enrolment: true };
  async function accountOf(principal: AdminPrincipal) {
    const customer = await gw.store.customers.get(personOf(principal));
    if (!customer) throw notFound('Your account is gone.');
    return customer;
  }

  return [
    defineRoute({
      ...common,
      name: 'getMySecondFactors',
      method: 'get',
      path: '/me/second-factors',
      summary: "The caller's second factors (TOTP app, passkeys, recovery codes left) and whether one is required",
      responses: { 200: { description: 'What is enrolled', schema: Summary } },
      async handle({ principal }) {
        const summary = await factors.summary(personOf(principal));
        return {
          body: {
            totp: summary.totp,
            passkeys: summary.passkeys.map((p) => ({ ...p, createdAt: p.createdAt.toISOString(), lastUsedAt: p.lastUsedAt?.toISOString() ?? null })),
            recoveryCodesLeft: summary.recoveryCodesLeft,
            required: gw.config.ADMIN_SECOND_FACTOR === 'required',
            usedAtSignIn: principal.secondFactor,
          },
        };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'beginMyTotp',
      method: 'post',
      path: '/me/second-factors/totp',
      summary: 'Start enrolling an authenticator app: a new secret (otpauth URI and QR code), pending until a code confirms it',
      responses: { 200: { description: 'Scan or type it into the app', schema: z.object({ otpauthUri: z.string(), qrSvg: z.string(), secret: z.string() }) } },
      async handle({ principal }) {
        return { body: await factors.beginTotp(await accountOf(principal)) };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'confirmMyTotp',
      method: 'post',
      path: '/me/second-factors/totp/confirm',
      summary: "Confirm the app with its current code; recovery codes come back (once) when it is the account's first factor",
      body: zodBody(CodeBody, { code: '123456' }),
      responses: { 200: { description: 'Enrolled', schema: RecoveryCodes }, 422: { description: 'validation_failed (invalid_code)', schema: ErrorBody } },
      async handle({ principal, body }) {
        const result = await factors.confirmTotp(personOf(principal), body.code);
        if (!result.ok) throw invalidCode();
        await audit('second_factor.totp_enrolled', principal);
        return { body: { recoveryCodes: result.recoveryCodes } };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'removeMyTotp',
      method: 'delete',
      path: '/me/second-factors/totp',
      summary: 'Remove the authenticator app',
      responses: { 204: { description: 'Removed' }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ principal }) {
        if (!(await factors.removeTotp(personOf(principal)))) throw notFound('No authenticator app is enrolled.');
        await audit('second_factor.totp_removed', principal);
        return { status: 204 };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'myPasskeyOptions',
      method: 'post',
      path: '/me/second-factors/passkeys/options',
      summary: 'WebAuthn registration options for a new passkey (the challenge is single-use, 5 minutes)',
      responses: { 200: { description: 'PublicKeyCredentialCreationOptionsJSON' } },
      async handle({ principal }) {
        return { body: await factors.registrationOptions(await accountOf(principal)) };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'addMyPasskey',
      method: 'post',
      path: '/me/second-factors/passkeys',
      summary: "Keep a passkey: the authenticator's answer to the options; recovery codes come back (once) when it is the account's first factor",
      body: zodBody(PasskeyBody, { name: 'Laptop', response: { id: '...', rawId: '...', type: 'public-key', response: { clientDataJSON: '...', attestationObject: '...' } } }),
      responses: { 201: { description: 'Kept', schema: RecoveryCodes }, 422: { description: 'validation_failed (invalid_passkey)', schema: ErrorBody } },
      async handle({ principal, body }) {
        const result = await factors.registerPasskey(personOf(principal), body.response as unknown as RegistrationResponseJSON, body.name);
        if (!result.ok) throw validationFailed([issue(['response'], 'invalid_passkey', 'the passkey could not be verified (expired or used challenge, wrong site): try again')], 'The passkey was not accepted.');
        await audit('second_factor.passkey_added', principal, { name: body.name });
        return { status: 201, body: { recoveryCodes: result.recoveryCodes } };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'removeMyPasskey',
      method: 'delete',
      path: '/me/second-factors/passkeys/:id',
      summary: 'Remove a passkey',
      params: PasskeyParams,
      responses: { 204: { description: 'Removed' }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ principal, params }) {
        if (!(await factors.removePasskey(personOf(principal), params.id))) throw notFound('No such passkey.');
        await audit('second_factor.passkey_removed', principal, { id: params.id });
        return { status: 204 };
      },
    }),
    defineRoute({
      ...common,
      recentAuth: true,
      name: 'newMyRecoveryCodes',
      method: 'post',
      path: '/me/second-factors/recovery-codes',
      summary: 'Ten new recovery codes, shown once (the old ones stop working)',
      responses: { 200: { description: 'The codes', schema: RecoveryCodes } },
      async handle({ principal }) {
        const recoveryCodes = await factors.newRecoveryCodes(personOf(principal));
        await audit('second_factor.recovery_codes_renewed', principal);
        return { body: { recoveryCodes } };
      },
    }),
  ];
}
