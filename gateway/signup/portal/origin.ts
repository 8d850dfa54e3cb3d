/**
 * Where the sign-up form was opened: inside a live OIDC interaction of this browser (at
 * the login prompt), or standalone. An expired or foreign interaction carries on
 * standalone rather than failing: the form still works, it just cannot continue to the
 * application afterwards.
 *
 *   const origin = await originOf(provider, c);     // { uid, clientId, clientName, returnTo } or all null
 *   const action = `${basePath(origin)}/register`;
 */
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { z } from 'zod';
import { AppError } from '../../http/errors.ts';
import { CONSOLE_CLIENT_ID } from '../../oidc/clients.ts';
import { clientDisplayName, loadInteraction } from '../../oidc/interaction.ts';
import { returnParamsOf, type ReturnParams } from '../return-to.ts';

export interface SignupOrigin {
  uid: string | null;
  /** The portal (OIDC client) whose login page opened the form. */
  clientId: string | null;
  clientName: string | null;
  /** The authorization request to continue after verification (gateway/signup/return-to.ts). */
  returnTo: ReturnParams | null;
}

/** The optional `:uid` of the form's routes; a malformed one reads as none: the form carries on standalone. */
export const OptionalUid = z.object({ uid: z.string().regex(/^[\w-]{1,128}$/).optional().catch(undefined) });

const STANDALONE: SignupOrigin = { uid: null, clientId: null, clientName: null, returnTo: null };

export async function originOf(provider: Provider, c: Context, uid: string | undefined): Promise<SignupOrigin> {
  if (!uid) return STANDALONE;
  let interaction;
  try {
    interaction = await loadInteraction(provider, c, { prompt: 'login' });
  } catch (err) {
    if (err instanceof AppError && err.code === 'interaction_expired') return STANDALONE;
    throw err;
  }
  // The admin console's sign-in offers no sign-up: a customer account made there carries on standalone.
  if (interaction.params.client_id === CONSOLE_CLIENT_ID) return STANDALONE;
  const clientId = typeof interaction.params.client_id === 'string' ? interaction.params.client_id : null;
  return { uid: interaction.uid, clientId, clientName: await clientDisplayName(provider, interaction.params.client_id), returnTo: returnParamsOf(interaction) };
}

/** `/interaction/<uid>` inside an interaction, '' standalone: the prefix of the form's actions. */
export function basePath(origin: SignupOrigin): string {
  return origin.uid ? `/interaction/${encodeURIComponent(origin.uid)}` : '';
}
