/**
 * The LDAP form style of Active Directory sign-in: Windows credentials typed into our
 * page, checked by binding against the directory (adapters/directory.ts: search by
 * sAMAccountName or userPrincipalName, bind as the user, empty passwords and disabled
 * accounts refused before any bind).
 *
 *   GET  /interaction/:uid/ad   the form (404 without LDAP_URL)
 *   POST /interaction/:uid/ad   refused before any bind while "AD registration &
 *                               authentication" is off (policies/access.ts
 *                               directorySignInAllowed); else bind, then the one
 *                               identity-resolution entry point (gateway/signup/external/):
 *                               sign in, prove an existing account, sign up, or refuse
 *
 * Every failure to bind gets the one generic message; failures count against the login
 * throttle (gateway/runtime/login-throttle.ts) keyed on the directory entry the search
 * found (objectGUID, else DN), so `jdoe`, `jdoe@corp.local` and `CORP\jdoe` are one
 * counter; a login the search does not find counts under its normalised spelling.
 * Identity recorded: issuer `ldapIssuer(config)`, subject = the entry's objectGUID
 * (resolve.ts; the DN for an entry without one).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { ldapIssuer, type Directory } from '../../../adapters/directory.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { AppError } from '../../http/errors.ts';
import { formBody } from '../../http/body.ts';
import { csrfToken, requireCsrf } from '../../http/csrf.ts';
import { formLoginAttempt, type LoginGate } from '../../http/form-limit.ts';
import { directoryEntrySubject, directoryLoginSubject } from '../../runtime/login-throttle.ts';
import { validated, type EdgeProblem } from '../../http/validation.ts';
import { expiredWhenInvalid, loadInteraction, UidParams } from '../../oidc/interaction.ts';
import { directorySignInAllowed } from '../../../policies/index.ts';
import { askForProof, refuseExternal, resolveExternal, signInExternal } from '../external/index.ts';
import { directoryPerson } from './resolve.ts';

export const AD_GENERIC_FAILURE = 'Incorrect Windows username or password.';
export const AD_UNAVAILABLE_MESSAGE =
  'The Windows / Active Directory sign-in cannot reach the directory right now. Try again in a few minutes, or sign in another way.';

/** Credentials come from the form body only; anything in the query string is ignored. */
const adLoginForm = z.object({
  username: z.string().max(512).default(''),
  password: z.string().max(2048).default(''),
  csrf: z.string(),
});

type LdapFormDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'policy' | 'limits' | 'views' | 'registration' | 'audit'>;

export function ldapFormRoutes(ctx: LdapFormDeps, directory: Directory | null): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);
  const { LDAP_URL: url, LDAP_SEARCH_BASE: searchBase } = ctx.config;
  const identityIssuer = url && searchBase ? ldapIssuer({ url, searchBase }) : null;

  function requireDirectory(): { dir: Directory; issuer: string } {
    if (!directory || !identityIssuer) throw new AppError('not_found', 404, 'Not found.');
    return { dir: directory, issuer: identityIssuer };
  }

  function renderForm(c: Context, uid: string, status: number, extra: { error?: string; username?: string } = {}) {
    c.status = status;
    c.type = 'html';
    c.body = ctx.views.render('ad-login', { uid, csrf: csrfToken(c), ...extra });
  }

  /** An unreadable form gets the one generic failure. */
  async function unreadable(c: Context, problem: EdgeProblem) {
    requireDirectory();
    if (problem.where !== 'body') expiredWhenInvalid(c, problem);
    const interaction = await loadInteraction(ctx.provider, c, { prompt: 'login' });
    renderForm(c, interaction.uid, 400, { error: AD_GENERIC_FAILURE });
  }

  router.get('/interaction/:uid/ad', validated({ params: UidParams }, async (c) => {
    requireDirectory();
    const interaction = await loadInteraction(ctx.provider, c, { prompt: 'login' });
    renderForm(c, interaction.uid, 200);
  }, unreadable));

  router.post('/interaction/:uid/ad', formBody, csrf, validated({ params: UidParams, body: adLoginForm }, async (c, { body }) => {
    const { dir, issuer } = requireDirectory();
    const interaction = await loadInteraction(ctx.provider, c, { prompt: 'login' });
    const login = body.username.trim();
    const accountKey = `ad:${login.toLowerCase().slice(0, 256)}`;
    if (!directorySignInAllowed(ctx.policy.current().policy)) {
      // Off for everyone, earlier AD users included: nothing is sent to the directory.
      await ctx.audit('identity.refused', { actor: 'anonymous', target: accountKey, data: { source: 'directory', reason: 'source_disabled', ip: c.ip, requestId: c.state.requestId } });
      return refuseExternal(ctx, c, 'directory', 'source_disabled', interaction.uid);
    }
    // The throttle keys on the entry the directory's search found, before the bind.
    const held: { gate?: LoginGate } = {};
    const result = await dir.authenticate(login, body.password, {
      admit: async (entry) => (held.gate = await formLoginAttempt(c, ctx.limits, directoryEntrySubject(entry))).limited === null,
    });
    if (!result.ok) {
      if (result.reason === 'unavailable') {
        await held.gate?.attempt?.passwordAccepted(); // not the person's failure
        c.set('Retry-After', '30');
        return renderForm(c, interaction.uid, 503, { error: AD_UNAVAILABLE_MESSAGE, username: login });
      }
      const gate = held.gate ?? (await formLoginAttempt(c, ctx.limits, directoryLoginSubject(login)));
      if (gate.limited !== null) return renderForm(c, interaction.uid, 429, { error: gate.limited, username: login });
      await ctx.audit('login.failure', { actor: 'anonymous', target: accountKey, data: { ip: c.ip, method: 'activeDirectory' } });
      return renderForm(c, interaction.uid, 401, { error: AD_GENERIC_FAILURE, username: login });
    }
    await held.gate?.attempt?.succeeded();

    const person = directoryPerson(issuer, result.user);
    const outcome = await resolveExternal(ctx, person, { proof: 'none' }, { ip: c.ip, requestId: c.state.requestId });
    if (outcome.kind === 'refuse') return refuseExternal(ctx, c, 'directory', outcome.reason, interaction.uid);
    if (outcome.kind === 'prove') return askForProof(ctx, c, interaction.uid, person, outcome);
    await signInExternal(ctx, c, outcome.customer, 'directory', ['ad'], outcome.how);
  }, unreadable));

  return router;
}
