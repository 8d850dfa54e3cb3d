/**
 * Security: the signed-in admin's or agent's own second factors, over /admin/api/me/...
 * An authenticator app (QR code, then its first code), passkeys (the browser's
 * authenticator through views/static/passkeys.js: options from here, the answer posted
 * back), recovery codes (shown once). When ADMIN_SECOND_FACTOR=required, this is the one
 * page a sign-in without a second factor reaches (the API refuses the others).
 *
 *   GET  /admin/security                         what is enrolled
 *   POST /admin/security/totp                    a new secret: QR code and confirm form
 *   POST /admin/security/totp/confirm            the app's code
 *   POST /admin/security/totp/remove
 *   POST /admin/security/passkeys/options        JSON options for the browser (script)
 *   POST /admin/security/passkeys                the browser's answer and a name
 *   POST /admin/security/passkeys/remove
 *   POST /admin/security/recovery-codes          new codes
 */
import type { Context } from 'koa';
import type { ApiReply } from './api-client.ts';
import { afterWrite, formOf, text, type PageData, type PageGroup } from './page.ts';

export const securityPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const factors = await kit.api.read(c, '/me/second-factors');
    kit.render(c, 'security', 'Security', { factors, enrolling: null, recoveryCodes: null, ...extra }, status);
  }

  /** After a write: the notice, and the recovery codes when the API handed out new ones (once). */
  function shown(reply: ApiReply, ok: number[], notice: string) {
    const result = afterWrite(reply, ok, notice);
    return { data: { ...result.data, recoveryCodes: ok.includes(reply.status) ? (reply.body.recoveryCodes ?? null) : null }, status: result.status };
  }

  router.get('/security', (c) => page(c));

  router.post('/security/totp', ...kit.form, async (c) => {
    const reply = await kit.api.call(c, 'POST', '/me/second-factors/totp');
    if (reply.status !== 200) return page(c, afterWrite(reply, [200], '').data, reply.status);
    return page(c, { enrolling: reply.body });
  });

  router.post('/security/totp/confirm', ...kit.form, async (c) => {
    const reply = await kit.api.call(c, 'POST', '/me/second-factors/totp/confirm', { code: text(formOf(c), 'code') });
    const result = shown(reply, [200], 'Authenticator app added. Sign-ins now ask for its code.');
    return page(c, result.data, result.status);
  });

  router.post('/security/totp/remove', ...kit.form, async (c) => {
    const result = shown(await kit.api.call(c, 'DELETE', '/me/second-factors/totp'), [204], 'Authenticator app removed.');
    return page(c, result.data, result.status);
  });

  router.post('/security/passkeys/options', ...kit.form, async (c) => {
    const reply = await kit.api.call(c, 'POST', '/me/second-factors/passkeys/options');
    c.status = reply.status;
    c.body = reply.body;
  });

  router.post('/security/passkeys', ...kit.form, async (c) => {
    const form = formOf(c);
    let response: unknown = null;
    try {
      response = JSON.parse(text(form, 'response'));
    } catch {
      // left null: the API says what is wrong with it
    }
    const reply = await kit.api.call(c, 'POST', '/me/second-factors/passkeys', { name: text(form, 'name'), response });
    const result = shown(reply, [201], 'Passkey added. Sign-ins can use it.');
    return page(c, result.data, result.status);
  });

  router.post('/security/passkeys/remove', ...kit.form, async (c) => {
    const id = text(formOf(c), 'id');
    const result = shown(await kit.api.call(c, 'DELETE', `/me/second-factors/passkeys/${encodeURIComponent(id)}`), [204], 'Passkey removed.');
    return page(c, result.data, result.status);
  });

  router.post('/security/recovery-codes', ...kit.form, async (c) => {
    const result = shown(await kit.api.call(c, 'POST', '/me/second-factors/recovery-codes'), [200], 'New recovery codes: the old ones no longer work.');
    return page(c, result.data, result.status);
  });
};
