/**
 * The way back to the application after a sign-up is verified, possibly in another
 * browser a day later when the interaction is long gone: the authorization request's
 * parameters, kept server-side as a flow (gateway/oidc/flow-state.ts) for as long as the
 * verification link lives; the link's token names the flow. The "continue" link is a
 * fresh authorization request with the same parameters (same state, nonce and PKCE
 * challenge, the verified address as login_hint), which the provider validates again
 * like any other request.
 *
 *   const returnTo = returnParamsOf(interaction);                        // when the form was opened in one
 *   const data = await saveReturn(store, returnTo, VERIFY_TTL_MS);      // { returnFlow } for the link's token
 *   const href = await continueHref(store, issuer, token.data, email);  // single use
 */
import { z } from 'zod';
import type { Store } from '../../adapters/store.ts';
import { defineFlow } from '../oidc/flow-state.ts';
import type { Interaction } from '../oidc/interaction.ts';

/** Authorization parameters carried into the "continue" link. */
const RETURN_PARAMS = [
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce',
  'code_challenge', 'code_challenge_method', 'claims', 'acr_values', 'ui_locales', 'max_age', 'resource',
] as const;

const param = z.string().max(4096).optional();

const ReturnParams = z.strictObject({
  ...(Object.fromEntries(RETURN_PARAMS.map((key) => [key, param])) as Record<(typeof RETURN_PARAMS)[number], typeof param>),
  client_id: z.string().min(1).max(256),
});
export type ReturnParams = z.output<typeof ReturnParams>;

/** Lives as long as the link that names it; the link's TTL is passed at save time. */
const SignupReturn = defineFlow('signup-return', ReturnParams, 24 * 3600_000);

/** The interaction's authorization parameters, or null when it has no client. */
export function returnParamsOf(interaction: Pick<Interaction, 'params'>): ReturnParams | null {
  const params: Record<string, string> = {};
  for (const key of RETURN_PARAMS) {
    const value = interaction.params[key];
    if (typeof value === 'string' || typeof value === 'number') params[key] = String(value);
  }
  const parsed = ReturnParams.safeParse(params);
  return parsed.success ? parsed.data : null;
}

/** Saves the way back for a link living `ttlMs`; the data to store with the link. */
export async function saveReturn(store: Pick<Store, 'tokens'>, params: ReturnParams | null | undefined, ttlMs: number): Promise<{ returnFlow?: string }> {
  if (!params) return {};
  return { returnFlow: await SignupReturn.start(store, params, { ttlMs }) };
}

/** The "continue" link for a redeemed link's data, or null; the flow is used up. */
export async function continueHref(store: Pick<Store, 'tokens'>, issuer: string, linkData: Record<string, unknown>, email: string): Promise<string | null> {
  const params = typeof linkData.returnFlow === 'string' ? await SignupReturn.take(store, linkData.returnFlow) : null;
  if (!params) return null;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (typeof value === 'string') query.set(key, value);
  query.set('login_hint', email);
  return `${issuer.replace(/\/+$/, '')}/auth?${query.toString()}`;
}
