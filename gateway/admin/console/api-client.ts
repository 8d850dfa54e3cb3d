/**
 * How console pages reach the admin JSON API: over loopback HTTP to this very process,
 * with the signed-in admin's access token, so the console runs every rule, validation
 * and role check exactly as automation does.
 *
 *   const reply = await api.call(c, 'POST', '/services', body);   // any status: the page decides
 *   const policy = await api.read(c, '/policy');                    // must succeed, else an error page
 *   fieldErrors(reply)  // { 'acceptedDomains.0': 'domain is claimed by ...' } for the form
 *
 * 401 ends the console session (sign in again); 403 reauthentication_required and
 * second_factor_required send the admin to sign in again or to Security (session.ts);
 * other 403s and 5xx become error pages; any
 * other status is the page's to show.
 */
import type { Context } from 'koa';
import { AppError } from '../../http/errors.ts';
import { clearSession, sessionToken } from './session-cookie.ts';

/** An answer of the admin API as the console reads it. */
export interface ApiReply {
  status: number;
  body: Record<string, unknown> & { error?: string; message?: string; details?: Array<{ path: (string | number)[]; message: string; label?: string; href?: string; line?: number; severity?: string }> };
  /** The ETag the API answered with (companies, services), for If-Match on the next save. */
  etag?: string;
}

export type ApiBody = ApiReply['body'];

export interface ConsoleApi {
  /** Calls the API; 401/403/5xx throw, every other status is returned. */
  call(c: Context, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiReply>;
  /** A GET that must succeed (query values that are '' are left out); anything else is an error page with the API's message. */
  read(c: Context, path: string, query?: Record<string, string>): Promise<ApiBody>;
}

const API_TIMEOUT_MS = 30_000;

/** This process's own listening address: the console talks to the API here, never through the public URL. */
export function internalBase(c: Context): string {
  const { localAddress, localPort } = c.req.socket;
  const host = !localAddress || localAddress === '::' ? '127.0.0.1' : localAddress.replace(/^::ffff:/, '');
  return `http://${host.includes(':') ? `[${host}]` : host}:${localPort}`;
}

/** API validation details -> the console's field names (first message per field; warnings left out). */
export function fieldErrors(reply: ApiReply): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const d of reply.body.details ?? []) if (d.severity !== 'warning') errors[d.path.join('.')] ??= besideField(d);
  return errors;
}

/**
 * A problem as shown next to its field, which already carries the label: "Line 2: not a
 * valid domain" rather than "Accepted domains, line 2: not a valid domain".
 */
function besideField(d: { message: string; label?: string; line?: number }): string {
  if (!d.label || !d.message.startsWith(`${d.label}: `)) return d.message;
  const rest = d.message.slice(d.label.length + 2);
  return d.line ? `Line ${d.line}: ${rest}` : rest;
}

async function call(c: Context, method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<ApiReply> {
  const token = sessionToken(c);
  if (!token) throw new AppError('admin_signin_required', 401, 'Sign in to the admin console.');
  const res = await fetch(`${internalBase(c)}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extraHeaders },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(API_TIMEOUT_MS),
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as ApiBody) : {};
  if (res.status === 401) {
    clearSession(c);
    throw new AppError('admin_signin_required', 401, 'Your admin session has ended. Sign in again.');
  }
  // The sign-in is too old, or lacks the required second factor: the console asks again (session.ts).
  if (res.status === 403 && (parsed.error === 'reauthentication_required' || parsed.error === 'second_factor_required')) {
    throw new AppError(parsed.error, 403, String(parsed.message));
  }
  if (res.status === 403) throw new AppError('forbidden', 403, 'Your account may not do this. Ask an account administrator.');
  if (res.status >= 500) throw new AppError('service_unavailable', 503, String(parsed.message ?? 'The admin API is unavailable.'));
  const etag = res.headers.get('etag');
  return { status: res.status, body: parsed, ...(etag ? { etag } : {}) };
}

async function read(c: Context, path: string, query: Record<string, string> = {}): Promise<ApiBody> {
  const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== ''));
  const reply = await call(c, 'GET', params.size ? `${path}?${params}` : path);
  if (reply.status >= 400) throw new AppError(String(reply.body.error ?? 'bad_request'), reply.status, String(reply.body.message ?? 'The request could not be completed.'));
  return reply.body;
}

export const consoleApi: ConsoleApi = { call, read };
