/**
 * The sign-up form's pages: the form (with field errors or a form-level message), the
 * "check your email" page (with its re-send form), and the page of a link that expired
 * or was used.
 */
import type { Context } from 'koa';
import type { Views } from '../../http/views.ts';
import { csrfToken } from '../../http/csrf.ts';
import { basePath, type SignupOrigin } from './origin.ts';

export interface FieldErrors {
  name?: string;
  email?: string;
  password?: string;
  confirm?: string;
}

/** The message key of a malformed address (views/locales/). */
export const INVALID_EMAIL = 'form.invalidEmail';

export function renderForm(views: Views, c: Context, origin: SignupOrigin, extra: { values?: { name?: string; email?: string }; errors?: FieldErrors; formError?: string } = {}): void {
  c.type = 'html';
  c.body = views.render('register', {
    action: `${basePath(origin)}/register`,
    loginHref: origin.uid ? `/interaction/${encodeURIComponent(origin.uid)}` : null,
    clientName: origin.clientName,
    csrf: csrfToken(c),
    values: extra.values ?? {},
    errors: extra.errors ?? {},
    formError: extra.formError ?? null,
  });
}

export function renderSent(views: Views, c: Context, origin: SignupOrigin, email: string, extra: { error?: string; resent?: boolean } = {}): void {
  c.type = 'html';
  c.body = views.render('register-sent', {
    email,
    resendAction: `${basePath(origin)}/register/resend`,
    csrf: csrfToken(c),
    error: extra.error ?? null,
    resent: extra.resent === true,
  });
}

export function renderInvalidLink(views: Views, c: Context): void {
  c.status = 410;
  c.type = 'html';
  c.body = views.render('verify-invalid', { csrf: csrfToken(c), resendAction: '/register/resend' });
}
