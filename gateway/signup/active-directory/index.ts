/**
 * Active Directory sign-up and sign-in, both styles (issue #4).
 *
 *   GET  /interaction/:uid/ad                  Windows / AD credentials form (LDAP_URL set)
 *   POST /interaction/:uid/ad                  bind against the directory, then sign in / sign up
 *   GET  /interaction/:uid/ad/connector        sends the browser to the saved AD login URL
 *   POST /federation/ad/assertion              the on-prem page posts a signed assertion here
 *   GET  /interaction/:uid/ad/connector/done   back inside the OIDC flow: finishes the login
 *
 * Both styles end in `resolveDirectoryPerson`: a known identity signs in; an existing
 * account with the same address is linked (a successful bind or a valid signed assertion
 * is the directory proving the person, so the link is safe) and audited; anyone else goes
 * through THE registration service with method `activeDirectory` (the policy decides:
 * AD registration exists only in `anyone` mode with `anyone.activeDirectory` on).
 *
 * Identities recorded:
 *   - LDAP form: issuer `ldapIssuer(config)`, subject = the entry's DN, lower-cased.
 *     The adapter exposes no objectGUID, so the DN is the stable id; moving a user to
 *     another OU changes it (the person then gets the `identity_conflict` page and an
 *     admin re-links). Switch to objectGUID when the directory port returns it.
 *   - Connector: issuer `ad-connector`, subject = the assertion's `sub`.
 *
 * The connector secret (GoToAssist's "AD secret token") lives in `store.settings` under
 * `activeDirectory.secretTokens`; `getAdSecrets` / `rotateAdSecret` are for the admin API.
 *
 *   const router = signupAdRoutes(ctx);          // RouteModule, listed in gateway/routes.ts
 *   const shownOnce = await rotateAdSecret(ctx.store, 24 * 3600_000);
 */
import { randomBytes } from 'node:crypto';
import { hashSecret } from '../../runtime/secrets.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import { errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { adConnectorLoginUrl, canonicalizeEmail, canSignIn, type DecisionReason } from '../../../policies/index.ts';
import { StoreConflictError, type Customer, type Identity, type Store } from '../../../adapters/store.ts';
import { createLdapDirectory, ldapIssuer, type Directory } from '../../../adapters/directory.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import type { LoginOption } from '../../oidc/interactions.ts';
import type { PolicyRuntime } from '../../runtime/policy-runtime.ts';
import type { Config } from '../../runtime/config.ts';
import type { Logger } from '../../runtime/logger.ts';
import { AppError } from '../../http/errors.ts';
import { formBody } from '../../http/body.ts';
import { csrfToken, requireCsrf } from '../../http/csrf.ts';
import { formRateLimited } from '../../http/form-limit.ts';
import { refusal } from '../../http/refusals.ts';
import { finishLogin as finishInteractionLogin, interactionExpired, loadInteraction } from '../../oidc/interaction.ts';
import { defineFlow } from '../../oidc/flow-state.ts';

export const AD_SECRETS_KEY = 'activeDirectory.secretTokens';
export const AD_CONNECTOR_ISSUER = 'ad-connector';
export const AD_GENERIC_FAILURE = 'Incorrect Windows username or password.';
export const AD_UNAVAILABLE_MESSAGE =
  'The Windows / Active Directory sign-in cannot reach the directory right now. Try again in a few minutes, or sign in another way.';
/** Longest lifetime an assertion may claim (exp - iat, and exp - now). */
export const ASSERTION_MAX_LIFETIME_S = 300;
/** Clock skew allowed between the on-prem page and Gatehouse. */
export const ASSERTION_CLOCK_TOLERANCE_S = 30;
/**
 * The connector's hand-off from the assertion endpoint (no interaction cookie there) to
 * the interaction path (where it is sent): which account the assertion proved, for which
 * interaction. Server-side; the posting browser holds only the flow id.
 */
const ConnectorHandoff = defineFlow('ad-connector-handoff', z.object({
  uid: z.string().regex(/^[\w-]{1,128}$/),
  customerId: z.string().min(1).max(128),
}), 120_000, 'gh.adc');

/* ------------------------------------------------------------ secret token */

/**
 * The connector's shared secret(s). The secret itself is stored (not a hash) because it
 * must stay usable as the HMAC key that verifies assertions: it is a shared secret and
 * must be protected at rest by the database's encryption and access controls.
 */
export interface AdSecrets {
  current: { value: string; createdAt: Date } | null;
  /** The secret before the last rotation, accepted until `expiresAt` (grace period). */
  previous: { value: string; expiresAt: Date } | null;
}

const storedSecrets = z.object({
  current: z.object({ value: z.string().min(32), createdAt: z.string() }),
  previous: z.object({ value: z.string().min(32), expiresAt: z.string() }).optional(),
});

/** Reads the connector secrets; a missing or unreadable record reads as "none" (the connector then refuses). */
export async function getAdSecrets(store: Pick<Store, 'settings'>): Promise<AdSecrets> {
  const parsed = storedSecrets.safeParse(await store.settings.get(AD_SECRETS_KEY));
  if (!parsed.success) return { current: null, previous: null };
  const { current, previous } = parsed.data;
  return {
    current: { value: current.value, createdAt: new Date(current.createdAt) },
    previous: previous ? { value: previous.value, expiresAt: new Date(previous.expiresAt) } : null,
  };
}

/**
 * Makes a new secret (256 bits, base64url) and returns it: show it once, it is never
 * displayed again. The old one stays valid for `graceMs` (0 = at once invalid) so the
 * on-prem page can be updated without downtime. Last writer wins on concurrent rotations.
 *
 *   const secret = await rotateAdSecret(store, 3600_000);
 */
export async function rotateAdSecret(store: Pick<Store, 'settings'>, graceMs: number, now: Date = new Date()): Promise<string> {
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError('graceMs must be a non-negative number');
  const { current } = await getAdSecrets(store);
  const value = randomBytes(32).toString('base64url');
  const record: z.input<typeof storedSecrets> = { current: { value, createdAt: now.toISOString() } };
  if (current && graceMs > 0) record.previous = { value: current.value, expiresAt: new Date(now.getTime() + graceMs).toISOString() };
  await store.settings.set(AD_SECRETS_KEY, record);
  return value;
}

/** HMAC keys an assertion may be signed with at `now`: current first, then previous within its grace. */
export function usableAdKeys(secrets: AdSecrets, now: Date): Uint8Array[] {
  const keys: Uint8Array[] = [];
  const encode = (s: string) => new TextEncoder().encode(s);
  if (secrets.current) keys.push(encode(secrets.current.value));
  if (secrets.previous && secrets.previous.expiresAt.getTime() > now.getTime()) keys.push(encode(secrets.previous.value));
  return keys;
}

/* --------------------------------------------------------------- assertion */

export interface AdAssertion {
  sub: string;
  email: string;
  name: string | undefined;
  jti: string;
  exp: number;
}

const assertionClaims = z.object({
  sub: z.string().min(1).max(256),
  email: z.string().max(512),
  name: z.string().max(256).optional(),
  jti: z.string().min(8).max(256),
  iat: z.number(),
  exp: z.number(),
});

const assertionInvalid = (detail: string) =>
  new AppError('ad_assertion_invalid', 401, "The sign-in from your organisation's Windows login page could not be accepted. Go back to the application and try again.", { detail });

/**
 * Verifies a connector assertion: HS256 with a usable secret, `iss` = the saved login
 * URL (exact string), `aud` = the issuer, `exp` at most 5 minutes ahead, `iat`, `jti`,
 * `sub`, `email`. Throws AppError ad_assertion_invalid | ad_assertion_expired.
 * Does NOT record the jti: call `recordAssertionUse` next.
 */
export async function verifyAdAssertion(
  jwt: string,
  options: { secrets: AdSecrets; loginUrl: string; audience: string; now: Date },
): Promise<AdAssertion> {
  const keys = usableAdKeys(options.secrets, options.now);
  if (keys.length === 0) throw new AppError('ad_connector_not_configured', 403, 'Signing in through your organisation\'s Windows login page is not set up yet.');
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(jwt, key, {
        algorithms: ['HS256'],
        issuer: options.loginUrl,
        audience: options.audience,
        currentDate: options.now,
        clockTolerance: ASSERTION_CLOCK_TOLERANCE_S,
        maxTokenAge: ASSERTION_MAX_LIFETIME_S,
        requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti'],
      });
      return checkLifetime(payload, options.now);
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue;
      if (err instanceof joseErrors.JWTExpired) throw new AppError('ad_assertion_expired', 401, "The sign-in from your organisation's Windows login page has expired. Go back to the application and try again.", { detail: err.message });
      if (err instanceof AppError) throw err;
      throw assertionInvalid(err instanceof Error ? `${err.name}: ${err.message}` : 'unparsable');
    }
  }
  throw assertionInvalid('signature matches no usable secret');
}

function checkLifetime(payload: unknown, now: Date): AdAssertion {
  const claims = assertionClaims.safeParse(payload);
  if (!claims.success) throw assertionInvalid('claims missing or malformed');
  const { exp, iat } = claims.data;
  const nowS = Math.floor(now.getTime() / 1000);
  if (exp - iat > ASSERTION_MAX_LIFETIME_S || exp - nowS > ASSERTION_MAX_LIFETIME_S + ASSERTION_CLOCK_TOLERANCE_S) {
    throw assertionInvalid('exp more than 5 minutes ahead');
  }
  return { sub: claims.data.sub, email: claims.data.email, name: claims.data.name, jti: claims.data.jti, exp };
}

/** Records the jti so the assertion is single-use; a second use throws ad_assertion_replayed. */
export async function recordAssertionUse(store: Pick<Store, 'tokens'>, assertion: AdAssertion, now: Date): Promise<void> {
  try {
    await store.tokens.create({
      kind: 'ad-assertion-jti',
      hash: hashSecret(assertion.jti),
      customerId: null,
      data: {},
      // Kept until the assertion could no longer pass the exp check anyway.
      expiresAt: new Date((assertion.exp + ASSERTION_CLOCK_TOLERANCE_S) * 1000),
      createdAt: now,
    });
  } catch (err) {
    if (err instanceof StoreConflictError && err.code === 'token_exists') {
      throw new AppError('ad_assertion_replayed', 401, "This sign-in from your organisation's Windows login page was already used. Go back to the application and start again.");
    }
    throw err;
  }
}

/* --------------------------------------------------- the person -> account */

export interface DirectoryPerson {
  identity: Identity;
  /** The directory's mail attribute / the assertion's email, raw ('' when absent). */
  email: string;
  name: string | undefined;
  /** How the directory proved the person (audit). */
  proof: 'directory_bind' | 'signed_assertion';
}

export type AdRefusal = DecisionReason | 'no_email' | 'account_unavailable' | 'account_pending' | 'identity_conflict';

export type PersonOutcome = { ok: true; customer: Customer; created: boolean; linked: boolean } | { ok: false; reason: AdRefusal };

type PersonDeps = Pick<GatewayContext, 'store' | 'registration' | 'audit' | 'logger'>;

const sameIdentity = (a: Identity, b: Identity) => a.issuer === b.issuer && a.subject === b.subject;

/** Known identity -> sign in; same address -> link; else register through the policy. */
export async function resolveDirectoryPerson(deps: PersonDeps, person: DirectoryPerson, context: Record<string, unknown>): Promise<PersonOutcome> {
  const known = await deps.store.customers.findByIdentity(person.identity.issuer, person.identity.subject);
  if (known) return usable(known, false, false);
  if (person.email.trim() === '') return { ok: false, reason: 'no_email' };
  const canonical = canonicalizeEmail(person.email);
  if (!canonical.ok) return { ok: false, reason: 'invalid_email' };
  const sameAddress = await deps.store.customers.findByEmail(canonical.email);
  if (sameAddress) return linkExisting(deps, sameAddress, person);

  const result = await deps.registration.register({
    method: 'activeDirectory',
    email: person.email,
    emailVerified: true, // the directory asserts the address
    name: person.name,
    identity: person.identity,
    actor: 'anonymous',
    context: { ...context, proof: person.proof },
  });
  if (result.kind === 'created') return usable(result.customer, true, false);
  if (result.kind === 'denied') return { ok: false, reason: result.decision.reason };
  // Lost a race with a concurrent sign-up: the winner holds the identity or the address.
  if (result.customer.identities.some((i) => sameIdentity(i, person.identity))) return usable(result.customer, false, false);
  return linkExisting(deps, result.customer, person);
}

function usable(customer: Customer, created: boolean, linked: boolean): PersonOutcome {
  if (canSignIn(customer)) return { ok: true, customer, created, linked };
  return { ok: false, reason: customer.status === 'pending' ? 'account_pending' : 'account_unavailable' };
}

/**
 * Links the directory identity to an account that already has this address. Called only
 * after the directory proved the person (successful bind / valid assertion). An account
 * already linked to ANOTHER entry of the same directory is not re-linked (the address
 * may have been reassigned): the person is refused and an admin decides.
 */
async function linkExisting(deps: PersonDeps, customer: Customer, person: DirectoryPerson): Promise<PersonOutcome> {
  if (customer.status !== 'active') return usable(customer, false, false);
  if (customer.identities.some((i) => i.issuer === person.identity.issuer)) {
    await deps.audit('customer.identity_conflict', { actor: 'anonymous', target: customer.id, data: { issuer: person.identity.issuer, subject: person.identity.subject } });
    return { ok: false, reason: 'identity_conflict' };
  }
  let linked: Customer | null;
  try {
    linked = await deps.store.customers.linkIdentity(customer.id, person.identity);
  } catch (err) {
    if (err instanceof StoreConflictError && err.code === 'identity_taken') {
      const holder = await deps.store.customers.findByIdentity(person.identity.issuer, person.identity.subject);
      return holder ? usable(holder, false, false) : { ok: false, reason: 'identity_conflict' };
    }
    throw err;
  }
  if (!linked) return { ok: false, reason: 'account_unavailable' };
  await deps.audit('customer.identity_linked', {
    actor: `customer:${customer.id}`,
    target: customer.id,
    data: { issuer: person.identity.issuer, subject: person.identity.subject, proof: person.proof },
  });
  return usable(linked, false, true);
}

/* ------------------------------------------------------------------ routes */

const adLoginForm = z.object({
  username: z.string().max(512).default(''),
  password: z.string().max(2048).default(''),
  csrf: z.string(),
});

const assertionForm = z.object({
  assertion: z.string().min(1).max(8192),
  state: z.string().regex(/^[\w-]{1,128}$/),
});

/** Builds the directory from LDAP_* settings, or null when LDAP_URL is unset. Opens nothing yet. */
export function directoryFromConfig(config: Config, logger: Logger): Directory | null {
  if (!config.LDAP_URL || !config.LDAP_SEARCH_BASE) return null;
  return createLdapDirectory(
    {
      url: config.LDAP_URL,
      bindDn: config.LDAP_BIND_DN ?? '',
      bindCredentials: config.LDAP_BIND_CREDENTIALS ?? '',
      searchBase: config.LDAP_SEARCH_BASE,
      searchFilter: config.LDAP_SEARCH_FILTER,
      connectTimeoutMs: config.LDAP_TIMEOUT_MS,
      timeLimitMs: config.LDAP_TIMEOUT_MS,
    },
    logger,
  );
}

/**
 * The login page's two AD buttons (gateway/app.ts), each only while the policy's
 * "AD registration & authentication" is on (anyone mode with `anyone.activeDirectory`):
 * the LDAP form when a directory is configured (LDAP_*), the connector when a login URL is saved.
 */
export function adLoginOptions(directory: Directory | null, policy: Pick<PolicyRuntime, 'current'>): LoginOption[] {
  const adOn = () => policy.current().policy.anyone.activeDirectory && policy.current().policy.selfRegistration === 'anyone';
  const options: LoginOption[] = [];
  if (directory) options.push((uid) => (adOn() ? { label: 'Sign in with Windows / Active Directory', href: `/interaction/${uid}/ad` } : null));
  options.push((uid) => (adOn() && adConnectorLoginUrl(policy.current().policy) ? { label: "Sign in with your organisation's Windows login page", href: `/interaction/${uid}/ad/connector` } : null));
  return options;
}

/** RouteModule (gateway/routes.ts). `directory` is injectable; default from LDAP_* config. */
export function signupAdRoutes(ctx: GatewayContext, directory: Directory | null): Router {
  const { provider, views, limits, config } = ctx;
  const router = new Router();
  const csrf = requireCsrf(config.ISSUER);
  const ldapIdentityIssuer = directory && config.LDAP_URL && config.LDAP_SEARCH_BASE ? ldapIssuer({ url: config.LDAP_URL, searchBase: config.LDAP_SEARCH_BASE }) : null;


  const loginInteraction = (c: Context) => loadInteraction(provider, c, { prompt: 'login' });

  function renderForm(c: Context, uid: string, status: number, extra: { error?: string; username?: string } = {}) {
    c.status = status;
    c.type = 'html';
    c.body = views.render('ad-login', { uid, csrf: csrfToken(c), ...extra });
  }

  function renderRefusal(c: Context, uid: string, reason: AdRefusal) {
    const page = refusal(reason, 'activeDirectory');
    c.status = page.status;
    c.type = 'html';
    c.body = views.render('ad-refused', { uid, message: page.message, code: page.code });
  }

  async function finishLogin(c: Context, customer: Customer, via: string) {
    await ctx.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: via } });
    await finishInteractionLogin(provider, c, customer.id, ['ad']);
  }

  function requireDirectory(): Directory {
    if (!directory) throw new AppError('not_found', 404, 'Not found.');
    return directory;
  }

  // --- LDAP form -------------------------------------------------------------

  router.get('/interaction/:uid/ad', async (c) => {
    requireDirectory();
    const interaction = await loginInteraction(c);
    renderForm(c, interaction.uid, 200);
  });

  router.post('/interaction/:uid/ad', formBody, csrf, async (c) => {
    const dir = requireDirectory();
    const interaction = await loginInteraction(c);
    // Credentials come from the form body only; anything in the query string is ignored.
    const form = adLoginForm.safeParse(c.request.body);
    if (!form.success) return renderForm(c, interaction.uid, 400, { error: AD_GENERIC_FAILURE });
    const login = form.data.username.trim();
    const accountKey = `ad:${login.toLowerCase().slice(0, 256)}`;
    const limited = await formRateLimited(c, limits, [['loginIp', c.ip], ['loginAccount', accountKey]]);
    if (limited) return renderForm(c, interaction.uid, 429, { error: limited, username: login });

    const result = await dir.authenticate(login, form.data.password);
    if (!result.ok) {
      if (result.reason === 'unavailable') {
        c.set('Retry-After', '30');
        return renderForm(c, interaction.uid, 503, { error: AD_UNAVAILABLE_MESSAGE, username: login });
      }
      await ctx.audit('login.failure', { actor: 'anonymous', target: accountKey, data: { ip: c.ip, method: 'activeDirectory' } });
      return renderForm(c, interaction.uid, 401, { error: AD_GENERIC_FAILURE, username: login });
    }

    const user = result.user;
    const outcome = await resolveDirectoryPerson(
      ctx,
      {
        identity: { issuer: ldapIdentityIssuer!, subject: user.dn.trim().toLowerCase() },
        email: user.email,
        name: user.name,
        proof: 'directory_bind',
      },
      { ip: c.ip, requestId: c.state.requestId },
    );
    if (!outcome.ok) return renderRefusal(c, interaction.uid, outcome.reason);
    await limits.reset('loginAccount', accountKey);
    await finishLogin(c, outcome.customer, 'activeDirectory');
  });

  // --- connector (GoToAssist-style on-prem login page) -----------------------

  router.get('/interaction/:uid/ad/connector', async (c) => {
    const interaction = await loginInteraction(c);
    const loginUrl = adConnectorLoginUrl(ctx.policy.current().policy);
    if (!loginUrl) throw connectorDisabled();
    const target = new URL(loginUrl);
    target.searchParams.set('state', interaction.uid);
    target.searchParams.set('return_to', `${config.ISSUER}/federation/ad/assertion`);
    c.status = 303;
    c.redirect(target.toString());
  });

  /*
   * The one form POST without a CSRF token. The on-prem login page posts here cross-site
   * by design, so it cannot know our CSRF cookie, and no session cookie is read here
   * (SameSite=Lax cookies are not even sent). What a CSRF token would prove, the
   * assertion proves better: it is signed with the shared secret only the on-prem page
   * and Gatehouse hold (HS256), bound to us (aud = ISSUER) and to the saved login URL
   * (iss), valid for at most 5 minutes and single-use (jti recorded). A forged post
   * without a fresh signed assertion gets nowhere, and a valid one only ever signs in the
   * person it names. The login itself is finished by GET .../ad/connector/done, which
   * needs this browser's own interaction cookie, so a stolen assertion cannot be pushed
   * into someone else's sign-in either.
   */
  router.post('/federation/ad/assertion', formBody, async (c) => {
    const form = assertionForm.safeParse(c.request.body);
    if (!form.success) throw assertionInvalid('form fields missing or malformed');
    await limits.hit('loginIp', c.ip);
    const loginUrl = adConnectorLoginUrl(ctx.policy.current().policy);
    if (!loginUrl) throw connectorDisabled();
    const uid = form.data.state;
    const interaction = await provider.Interaction.find(uid);
    if (!interaction || interaction.prompt.name !== 'login') throw interactionExpired('assertion for no live login interaction');

    const now = new Date();
    const assertion = await verifyAdAssertion(form.data.assertion, { secrets: await getAdSecrets(ctx.store), loginUrl, audience: config.ISSUER, now });
    await recordAssertionUse(ctx.store, assertion, now);
    const outcome = await resolveDirectoryPerson(
      ctx,
      { identity: { issuer: AD_CONNECTOR_ISSUER, subject: assertion.sub }, email: assertion.email, name: assertion.name, proof: 'signed_assertion' },
      { ip: c.ip, requestId: c.state.requestId },
    );
    if (!outcome.ok) return renderRefusal(c, uid, outcome.reason);
    // Hand the result to the interaction path, where the interaction cookie is sent.
    const handoff = await ConnectorHandoff.start(ctx.store, { uid, customerId: outcome.customer.id }, { now });
    ConnectorHandoff.cookie.set(c, handoff, `/interaction/${uid}`);
    c.status = 303;
    c.redirect(`/interaction/${uid}/ad/connector/done`);
  });

  router.get('/interaction/:uid/ad/connector/done', async (c) => {
    const interaction = await loginInteraction(c);
    const handoff = await ConnectorHandoff.take(ctx.store, ConnectorHandoff.cookie.get(c));
    ConnectorHandoff.cookie.clear(c, `/interaction/${interaction.uid}`);
    if (!handoff || handoff.uid !== interaction.uid) {
      throw interactionExpired('connector hand-off missing, foreign or expired');
    }
    const customer = await ctx.store.customers.get(handoff.customerId);
    if (!customer || !canSignIn(customer)) return renderRefusal(c, interaction.uid, 'account_unavailable');
    await finishLogin(c, customer, 'activeDirectoryConnector');
  });

  return router;
}

function connectorDisabled(): AppError {
  return new AppError('ad_connector_disabled', 403, "Signing in through your organisation's Windows login page is not available here.");
}
