/**
 * Whom a customer page or mail is for: the portal (OIDC client) it belongs to and the
 * language asked for, per request, so that every page and every mail rendered while
 * answering shows that portal's branding in that language (issue 15) without each
 * handler passing them along. One AsyncLocalStorage per request (`pageContextMiddleware`,
 * early in the stack); the one interaction loader (gateway/oidc/interaction.ts), the link
 * tokens (gateway/signup/link-tokens.ts) and oidc-provider's own pages name the portal
 * with `presentAs`, and the views read it (gateway/http/views.ts).
 *
 *   presentAs({ clientId: interaction.params.client_id, uiLocales: interaction.params.ui_locales, flow: interaction.uid });
 *   const { clientId, locale } = currentPresentation();
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Next } from 'koa';

/** What pages show of a portal: its branding with the deployment's filling the gaps (gateway/oidc/branding.ts). */
export interface Brand {
  clientId: string | null;
  /** The name pages and mail show ("Acme Support"), never empty. */
  name: string;
  /** Relative URL of the logo, or null. */
  logoUrl: string | null;
  /** Relative URL of the stylesheet carrying the primary colour, or null. */
  stylesheet: string | null;
  supportEmail: string | null;
  privacyUrl: string | null;
  termsUrl: string | null;
}

export interface Presentation {
  /** The portal the page or mail is for, or null (the deployment's branding). */
  clientId: string | null;
  /** The OIDC `ui_locales` of the flow (space-separated), or a language remembered with a link. */
  uiLocales: string | null;
  /** The interaction (or flow) this request belongs to, for the language switcher. */
  flow: string | null;
}

interface Slot extends Presentation {
  koa: Context | null;
}

const storage = new AsyncLocalStorage<Slot>();

/** Koa middleware: a fresh presentation for each request. */
export async function pageContextMiddleware(ctx: Context, next: Next): Promise<void> {
  await storage.run({ koa: ctx, clientId: null, uiLocales: null, flow: null }, next);
}

/** Names the portal (and the flow's languages) of the current request. Outside a request it does nothing. */
export function presentAs(values: { clientId?: unknown; uiLocales?: unknown; flow?: unknown }): void {
  const slot = storage.getStore();
  if (!slot) return;
  if (typeof values.clientId === 'string' && values.clientId !== '') slot.clientId = values.clientId;
  if (typeof values.uiLocales === 'string' && values.uiLocales.trim() !== '') slot.uiLocales = values.uiLocales.slice(0, 200);
  if (typeof values.flow === 'string' && values.flow !== '') slot.flow = values.flow;
}

/** The current request's presentation (all null outside a request). */
export function currentPresentation(): Presentation & { koa: Context | null } {
  const slot = storage.getStore();
  return slot ? { ...slot } : { koa: null, clientId: null, uiLocales: null, flow: null };
}

/** Runs `fn` presenting as `values` (mail composed outside a request, tests). */
export function withPresentation<T>(values: Partial<Presentation>, fn: () => T): T {
  return storage.run({ koa: null, clientId: values.clientId ?? null, uiLocales: values.uiLocales ?? null, flow: values.flow ?? null }, fn);
}
