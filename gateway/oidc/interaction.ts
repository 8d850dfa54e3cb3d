/**
 * The oidc-provider interaction a page belongs to, loaded one way for every interaction
 * route (login and consent, the service prompt, Google, Active Directory, the sign-up
 * form), and the two ways out of it (a login result, or the person cancelling).
 *
 *   const interaction = await loadInteraction(provider, c, { prompt: 'login' });   // 400 interaction_expired
 *   await finishLogin(provider, c, customer.id, ['pwd']);                          // 303 back into the flow
 *
 * The interaction comes from this browser's interaction cookie, never from the URL alone:
 * the `:uid` of the URL must name the same interaction. Only a missing or expired
 * interaction is the person's problem (400 interaction_expired); a store outage surfaces
 * as 503 through the error handler (fail closed, and say so).
 */
import type { Context } from 'koa';
import { errors, type Provider } from 'oidc-provider';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import type { EdgeProblem } from '../http/validation.ts';
import { presentAs } from '../http/page-context.ts';

export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

export const EXPIRED_INTERACTION = 'This sign-in page has expired. Go back to the application and start again.';

export function interactionExpired(detail?: string): AppError {
  return new AppError('interaction_expired', 400, EXPIRED_INTERACTION, detail ? { detail } : {});
}

/** The `:uid` of every interaction route (oidc-provider's uids are URL-safe ids). */
export const UidParams = z.object({ uid: z.string().regex(/^[\w-]{1,128}$/) });

/** The body of a form that carries nothing but its CSRF token (consent, cancel). */
export const CsrfOnlyForm = z.object({ csrf: z.string() });

/** `invalid` for interaction routes (gateway/http/validation.ts `validated`): a request that fails its schema names no live interaction. */
export function expiredWhenInvalid(_c: Context, problem: EdgeProblem): never {
  throw interactionExpired(`malformed ${problem.where}`);
}

/**
 * This browser's interaction; it must be the one named by `c.params.uid` (when the
 * route has one) and, when `prompt` is given, be at that prompt.
 */
export async function loadInteraction(provider: Provider, c: Context, expect: { prompt?: string } = {}): Promise<Interaction> {
  let interaction: Interaction;
  try {
    interaction = await provider.interactionDetails(c.req, c.res);
  } catch (err) {
    if (err instanceof errors.SessionNotFound) throw interactionExpired('no interaction for this browser');
    throw err;
  }
  const uid = (c.params as Record<string, string | undefined> | undefined)?.uid;
  if (uid !== undefined && interaction.uid !== uid) throw interactionExpired('interaction of another uid');
  // The pages (and mail) of this request are the portal's, in the languages it asked for.
  presentAs({ clientId: interaction.params.client_id, uiLocales: interaction.params.ui_locales, flow: interaction.uid });
  if (expect.prompt !== undefined && interaction.prompt.name !== expect.prompt) throw interactionExpired(`prompt ${interaction.prompt.name}`);
  return interaction;
}

/** The client's display name for pages ("to continue to ..."), or null. */
export async function clientDisplayName(provider: Provider, clientId: unknown): Promise<string | null> {
  if (typeof clientId !== 'string' || clientId === '') return null;
  const client = await provider.Client.find(clientId);
  return client?.clientName ?? client?.clientId ?? null;
}

/** Ends the login prompt with this account signed in (`amr` says how) and sends the browser back into the flow. */
export async function finishLogin(provider: Provider, c: Context, accountId: string, amr: string[]): Promise<void> {
  const redirectTo = await provider.interactionResult(c.req, c.res, { login: { accountId, amr } }, { mergeWithLastSubmission: false });
  c.status = 303;
  c.redirect(redirectTo);
}

/** Ends the interaction with access_denied: the application gets the error, with this description. */
export async function abortInteraction(provider: Provider, c: Context, description: string): Promise<void> {
  const redirectTo = await provider.interactionResult(c.req, c.res, { error: 'access_denied', error_description: description }, { mergeWithLastSubmission: false });
  c.status = 303;
  c.redirect(redirectTo);
}
