/**
 * What every console page group is built from: the kit (API client, CSRF check, the
 * renderer) and small helpers that read the posted form and turn an API answer into
 * what the page shows.
 *
 *   export const servicesPages: PageGroup = (router, kit) => {
 *     router.get('/services', (c) => page(c));
 *     router.post('/services', ...kit.form, async (c) => { const r = await kit.api.call(c, 'POST', '/services', body); ... });
 *   };
 *
 * Forms are not validated here: the console turns them into the API's JSON and the API
 * validates (its field paths come back as `errors` next to the fields).
 *
 * Nothing is lost: a save that succeeds answers 303 to the page (POST-redirect-GET, so a
 * reload never re-submits) with its notice carried in a short-lived flash cookie
 * (`kit.done`); a save that fails re-renders the form with the admin's values and the
 * API's errors; a form posted after the console session ended is kept server-side and
 * given back after the re-sign-in (`kit.restored`, see session.ts).
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { ConsoleApi, ApiReply } from './api-client.ts';
import { fieldErrors } from './api-client.ts';

/** A posted form as @koa/bodyparser gives it. */
export type Form = Record<string, string | string[] | undefined>;

/** Extra data for a page's template (notice, error, errors, draft, warnings, ...). */
export type PageData = Record<string, unknown>;

export interface ConsoleKit {
  api: ConsoleApi;
  /** Body parsing and CSRF check for a POST: `router.post(path, ...kit.form, handler)`. */
  form: Middleware[];
  /** The issuer (CSRF checks of forms the kit's `form` does not parse, e.g. uploads). */
  issuer: string;
  /** Renders views/admin/<view>.eta inside the console layout (with the flash notice of a redirect, if any). */
  render(c: Context, view: string, title: string, data: PageData, status?: number): void;
  /** After a successful write: 303 to `location`, showing `notice` (and the API's warnings) there. */
  done(c: Context, location: string, notice: string, warnings?: unknown): void;
  /** The form this page had posted when the session ended (`?restore=` after re-sign-in), once; null otherwise. */
  restored(c: Context): Promise<Form | null>;
}

/** Shown above a form given back after a re-sign-in. */
export const RESTORED_NOTICE = 'Your console session had ended, so your last changes were not saved yet. They are filled in below: review them and save.';

/** Warnings as the flash cookie carries them: a few, short. */
export function flashWarnings(warnings: unknown): Array<{ message: string; href?: string }> {
  if (!Array.isArray(warnings)) return [];
  return warnings.slice(0, 8).map((w: { message?: unknown; href?: unknown }) => ({
    message: String(w?.message ?? '').slice(0, 300),
    ...(typeof w?.href === 'string' ? { href: w.href } : {}),
  }));
}

/** A group of console pages, mounted on the /admin router by gateway/admin/console/index.ts. */
export type PageGroup = (router: Router, kit: ConsoleKit) => void;

/** The sign-up methods an admin configures (`agent` is added where a simulation may use it). */
export const METHODS = ['portal', 'google', 'email', 'activeDirectory'] as const;

export function formOf(c: Context): Form {
  return (c.request.body ?? {}) as Form;
}

/** A text field, trimmed ('' when absent). */
export function text(form: Form, name: string): string {
  const value = form[name];
  return typeof value === 'string' ? value.trim() : '';
}

/** A repeated field (checkbox group, multi-select) as a list. */
export function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** A textarea of entries, one per line or comma-separated. */
export function lines(value: string | string[] | undefined): string[] {
  return list(value).join('\n').split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
}

/** A hidden field holding JSON (what a form was read from), or null when absent or unreadable. */
export function jsonField(value: unknown): unknown {
  try {
    return typeof value === 'string' ? (JSON.parse(value) as unknown) : null;
  } catch {
    return null;
  }
}

/** "1 session", "3 sessions". */
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A checkbox. */
export const on = (form: Form, name: string): boolean => form[name] === 'on' || form[name] === 'true';

/** A query-string value ('' when absent or given twice). */
export function queryValue(c: Context, name: string): string {
  const value = c.query[name];
  return typeof value === 'string' ? value : '';
}

/**
 * What a page shows after a write through the API: on one of the `ok` statuses the
 * notice and the API's warnings (status 200); otherwise the API's message (or
 * `fallback`), its field errors and the admin's draft, with the API's status.
 */
export function afterWrite(reply: ApiReply, ok: readonly number[], notice: string, options: { draft?: unknown; fallback?: string } = {}): { data: PageData; status: number } {
  if (ok.includes(reply.status)) return { data: { notice, warnings: reply.body.warnings ?? [] }, status: 200 };
  const error = String(reply.body.message ?? options.fallback ?? 'The change could not be saved.');
  // Every problem, each with the page where it is fixed (the layout lists them under the error).
  const problems = (reply.body.details ?? []).map((d) => ({ message: d.message, href: d.href, severity: d.severity }));
  return { data: { error, problems, errors: fieldErrors(reply), ...(options.draft !== undefined ? { draft: options.draft } : {}) }, status: reply.status };
}
