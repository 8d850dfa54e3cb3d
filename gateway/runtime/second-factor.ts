/**
 * Second factors of admins and agents: TOTP (RFC 6238, `otpauth`), passkeys (WebAuthn,
 * `@simplewebauthn/server`) and recovery codes. Enrolment is driven by the admin API
 * (gateway/admin/api/me.ts), the check by the sign-in's second step
 * (gateway/oidc/second-factor-step.ts); both go through this one module.
 *
 *   const factors = secondFactors({ store, issuer, cookieKeys });
 *   const { otpauthUri, qrSvg } = await factors.beginTotp(customer);
 *   await factors.confirmTotp(customer.id, '123456');       // -> { ok, recoveryCodes }
 *   await factors.checkTotp(customer.id, '123456');         // false for a replayed code
 *
 * Rules kept here:
 *   - the TOTP secret is sealed (AES-256-GCM, key derived from COOKIE_KEYS by HKDF; any
 *     key opens, the newest seals, a secret opened with an older one is sealed again) and
 *     never leaves the server after enrolment;
 *   - a TOTP code is accepted for its time step or one either side, only for a step later
 *     than the last one accepted (stored per account), and each accepted step is claimed
 *     by a unique `factor-use` token: a replayed code is refused even by a concurrent request;
 *   - a WebAuthn challenge is single-use, bound to the account and purpose, 5 minutes;
 *     the relying party is the issuer's host name, the origin the issuer's origin;
 *   - recovery codes (10, shown once) are stored as SHA-256 hashes and used once.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { StoreConflictError, type Customer, type Store } from '../../adapters/store.ts';
import { hashSecret } from './secrets.ts';

/**
 * @simplewebauthn/server (with its ASN.1 and CBOR tree) and qrcode are loaded on first use,
 * not at every start: the WebAuthn tree alone took over 3 s to load on the loaded machine,
 * for pages only staff open.
 */
let webauthnModule: Promise<typeof import('@simplewebauthn/server')> | null = null;
const webauthn = () => (webauthnModule ??= import('@simplewebauthn/server'));
let qrModule: Promise<typeof import('qrcode')> | null = null;
// qrcode is CommonJS: its API is the module's default export at run time.
const qrcode = () => (qrModule ??= import('qrcode').then((m) => (m as unknown as { default: typeof m }).default));

const PERIOD_S = 30;
const PENDING_TOTP_MS = 10 * 60_000;
const CHALLENGE_MS = 5 * 60_000;
const RECOVERY_CODES = 10;

export interface SecondFactorDeps {
  store: Pick<Store, 'factors' | 'tokens'>;
  /** ISSUER: the WebAuthn relying party (its host) and origin, and the TOTP issuer label. */
  issuer: string;
  cookieKeys: readonly string[];
}

export interface FactorSummary {
  totp: boolean;
  passkeys: Array<{ id: string; name: string; createdAt: Date; lastUsedAt: Date | null }>;
  recoveryCodesLeft: number;
  /** Has a factor it can sign in with (TOTP or a passkey). */
  any: boolean;
}

export type WebAuthnPurpose = 'register' | 'authenticate';

/* ---------------------------------------------------------------- sealing */

function sealKeys(cookieKeys: readonly string[]): Array<{ id: string; key: Buffer }> {
  return cookieKeys.map((k) => {
    const key = Buffer.from(hkdfSync('sha256', k, 'gatehouse', 'totp-secret/v1', 32));
    return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
  });
}

export function seal(plain: string, cookieKeys: readonly string[]): string {
  const { id, key } = sealKeys(cookieKeys)[0]!;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ['v1', id, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** The plain text and whether it was sealed with the newest key; null when no key opens it. */
export function unseal(sealed: string, cookieKeys: readonly string[]): { plain: string; current: boolean } | null {
  const [version, id, iv, body, tag] = sealed.split('.');
  if (version !== 'v1' || !iv || !body || !tag) return null;
  const keys = sealKeys(cookieKeys);
  const index = keys.findIndex((k) => k.id === id);
  if (index < 0) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys[index]!.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    return { plain, current: index === 0 };
  } catch {
    return null;
  }
}

/* ---------------------------------------------------------------- service */

const normaliseCode = (code: string) => code.replace(/[\s-]/g, '').toLowerCase();

function newRecoveryCode(): string {
  // 50 bits in base32 (no 0/1/8/9 confusion: RFC 4648 alphabet), shown as xxxxx-xxxxx.
  const s = new Secret({ size: 10 }).base32.toLowerCase().slice(0, 10);
  return `${s.slice(0, 5)}-${s.slice(5)}`;
}

export function secondFactors(deps: SecondFactorDeps) {
  const { store } = deps;
  const issuerUrl = new URL(deps.issuer);
  const rpID = issuerUrl.hostname;
  const origin = issuerUrl.origin;

  const totpFor = (label: string, secret: Secret) => new TOTP({ issuer: 'Gatehouse', label, algorithm: 'SHA1', digits: 6, period: PERIOD_S, secret });

  /** Claims a used code once (unique hash); false when it was claimed before. */
  async function claim(what: string, customerId: string, ttlMs: number): Promise<boolean> {
    const now = new Date();
    try {
      await store.tokens.create({ kind: 'factor-use', hash: hashSecret(`${what}:${customerId}`), customerId, data: {}, expiresAt: new Date(now.getTime() + ttlMs), createdAt: now });
      return true;
    } catch (err) {
      if (err instanceof StoreConflictError) return false;
      throw err;
    }
  }

  /** The time step `code` is valid for (one step of drift either side), or null. */
  function matchingStep(secret: string, code: string, now: number): number | null {
    if (!/^\d{6}$/.test(code)) return null;
    const delta = totpFor('x', Secret.fromBase32(secret)).validate({ token: code, timestamp: now, window: 1 });
    return delta === null ? null : TOTP.counter({ period: PERIOD_S, timestamp: now }) + delta;
  }

  async function giveRecoveryCodes(customerId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
    await store.factors.setRecoveryCodes(customerId, codes.map((c) => hashSecret(normaliseCode(c))));
    return codes;
  }

  /** After a first factor: recovery codes when the account has none yet. */
  async function recoveryCodesIfNone(customerId: string): Promise<string[] | null> {
    const doc = await store.factors.get(customerId);
    return doc && doc.recoveryCodes.length > 0 ? null : giveRecoveryCodes(customerId);
  }

  async function storeChallenge(challenge: string, customerId: string, purpose: WebAuthnPurpose): Promise<void> {
    const now = new Date();
    await store.tokens.create({ kind: 'webauthn-challenge', hash: hashSecret(challenge), customerId, data: { purpose }, expiresAt: new Date(now.getTime() + CHALLENGE_MS), createdAt: now });
  }

  /** The challenge the browser signed, consumed once; null when unknown, spent, expired, another account's or another purpose's. */
  async function takeChallenge(clientDataJSON: string, customerId: string, purpose: WebAuthnPurpose): Promise<string | null> {
    let challenge: unknown;
    try {
      challenge = (JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown }).challenge;
    } catch {
      return null;
    }
    if (typeof challenge !== 'string' || !/^[\w-]{16,128}$/.test(challenge)) return null;
    const token = await store.tokens.consume('webauthn-challenge', hashSecret(challenge), new Date());
    return token && token.customerId === customerId && token.data.purpose === purpose ? challenge : null;
  }

  return {
    async summary(customerId: string): Promise<FactorSummary> {
      const doc = await store.factors.get(customerId);
      const passkeys = (doc?.passkeys ?? []).map(({ id, name, createdAt, lastUsedAt }) => ({ id, name, createdAt, lastUsedAt }));
      const totp = Boolean(doc?.totp);
      return { totp, passkeys, recoveryCodesLeft: doc?.recoveryCodes.length ?? 0, any: totp || passkeys.length > 0 };
    },

    /** A new secret, pending until confirmed with a code: the authenticator app's URI and its QR code (SVG). */
    async beginTotp(customer: Pick<Customer, 'id' | 'email'>): Promise<{ otpauthUri: string; qrSvg: string; secret: string }> {
      const secret = new Secret({ size: 20 });
      await store.factors.setPendingTotp(customer.id, { secret: seal(secret.base32, deps.cookieKeys), expiresAt: new Date(Date.now() + PENDING_TOTP_MS) });
      const otpauthUri = totpFor(customer.email, secret).toString();
      const qrSvg = await (await qrcode()).toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { otpauthUri, qrSvg, secret: secret.base32 };
    },

    /** The first code from the app makes the pending secret the account's TOTP; recovery codes when it had none. */
    async confirmTotp(customerId: string, code: string, now = Date.now()): Promise<{ ok: true; recoveryCodes: string[] | null } | { ok: false }> {
      const pending = (await store.factors.get(customerId))?.pendingTotp;
      const secret = pending && pending.expiresAt.getTime() > now ? unseal(pending.secret, deps.cookieKeys)?.plain : undefined;
      const step = secret ? matchingStep(secret, normaliseCode(code), now) : null;
      if (step === null || !(await claim(`totp:${step}`, customerId, 3 * PERIOD_S * 1000))) return { ok: false };
      if (!(await store.factors.confirmTotp(customerId, step, new Date(now)))) return { ok: false };
      return { ok: true, recoveryCodes: await recoveryCodesIfNone(customerId) };
    },

    removeTotp: (customerId: string) => store.factors.removeTotp(customerId),

    /** A code from the enrolled app: true once per time step, never for a step at or before the last one accepted. */
    async checkTotp(customerId: string, code: string, now = Date.now()): Promise<boolean> {
      const totp = (await store.factors.get(customerId))?.totp;
      if (!totp) return false;
      const opened = unseal(totp.secret, deps.cookieKeys);
      if (!opened) return false;
      const step = matchingStep(opened.plain, normaliseCode(code), now);
      if (step === null || step <= totp.lastStep) return false;
      if (!(await claim(`totp:${step}`, customerId, 3 * PERIOD_S * 1000))) return false;
      if (!(await store.factors.recordTotpStep(customerId, step))) return false;
      if (!opened.current) await store.factors.setPendingTotp(customerId, { secret: seal(opened.plain, deps.cookieKeys), expiresAt: new Date(now + PENDING_TOTP_MS) }).then(() => store.factors.confirmTotp(customerId, step, new Date(now)));
      return true;
    },

    async registrationOptions(customer: Pick<Customer, 'id' | 'email' | 'name'>) {
      const existing = (await store.factors.get(customer.id))?.passkeys ?? [];
      const options = await (await webauthn()).generateRegistrationOptions({
        rpName: 'Gatehouse',
        rpID,
        userName: customer.email,
        userDisplayName: customer.name || customer.email,
        userID: new TextEncoder().encode(customer.id),
        attestationType: 'none',
        excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
      await storeChallenge(options.challenge, customer.id, 'register');
      return options;
    },

    /** Verifies the browser's answer to `registrationOptions` and keeps the passkey; recovery codes when the account had none. */
    async registerPasskey(customerId: string, response: RegistrationResponseJSON, name: string): Promise<{ ok: true; recoveryCodes: string[] | null } | { ok: false }> {
      const challenge = await takeChallenge(response.response.clientDataJSON, customerId, 'register');
      if (!challenge) return { ok: false };
      const verified = await (await webauthn()).verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: origin, expectedRPID: rpID, requireUserVerification: false }).catch(() => null);
      if (!verified?.verified) return { ok: false };
      const { credential } = verified.registrationInfo;
      await store.factors.addPasskey(customerId, {
        id: credential.id,
        publicKey: Buffer.from(credential.publicKey).toString('base64url'),
        counter: credential.counter,
        transports: credential.transports ?? [],
        name: name.trim().slice(0, 60) || 'Passkey',
        createdAt: new Date(),
        lastUsedAt: null,
      });
      return { ok: true, recoveryCodes: await recoveryCodesIfNone(customerId) };
    },

    removePasskey: (customerId: string, id: string) => store.factors.removePasskey(customerId, id),

    async authenticationOptions(customerId: string) {
      const passkeys = (await store.factors.get(customerId))?.passkeys ?? [];
      const options = await (await webauthn()).generateAuthenticationOptions({ rpID, allowCredentials: passkeys.map((p) => ({ id: p.id, transports: p.transports })), userVerification: 'preferred' });
      await storeChallenge(options.challenge, customerId, 'authenticate');
      return options;
    },

    /** Verifies the browser's answer to `authenticationOptions` with one of the account's passkeys. */
    async checkPasskey(customerId: string, response: AuthenticationResponseJSON): Promise<boolean> {
      const challenge = await takeChallenge(response.response.clientDataJSON, customerId, 'authenticate');
      const passkey = (await store.factors.get(customerId))?.passkeys.find((p) => p.id === response.id);
      if (!challenge || !passkey) return false;
      const verified = await (await webauthn()).verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: origin,
        expectedRPID: rpID,
        credential: { id: passkey.id, publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')), counter: passkey.counter, transports: passkey.transports as never },
        requireUserVerification: false,
      }).catch(() => null);
      if (!verified?.verified) return false;
      return store.factors.recordPasskeyUse(customerId, passkey.id, verified.authenticationInfo.newCounter, new Date());
    },

    /** Ten new recovery codes (the old ones stop working), to be shown once. */
    newRecoveryCodes: (customerId: string) => giveRecoveryCodes(customerId),

    async checkRecoveryCode(customerId: string, code: string): Promise<boolean> {
      const hash = hashSecret(normaliseCode(code));
      const doc = await store.factors.get(customerId);
      if (!doc?.recoveryCodes.includes(hash) || !(await claim(`recovery:${hash}`, customerId, 24 * 3600_000))) return false;
      return store.factors.removeRecoveryCode(customerId, hash);
    },
  };
}

export type SecondFactors = ReturnType<typeof secondFactors>;
