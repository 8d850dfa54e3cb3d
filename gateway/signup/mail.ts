/**
 * The mail the sign-up paths send, written once, each with its single-use link: the
 * verification link (portal form), the notice to an existing owner, the invite to set a
 * first password (inbound email, visitor, sharing), the password reset, and the link
 * that proves an account when an external sign-in links to it (gateway/signup/external/).
 * Mail goes into the durable outbox (`sendMail`); the outbox worker sends and retries it,
 * so nothing here waits on SMTP. Links are built from ISSUER, never from the Host header.
 *
 * None of them carries text anyone else chose: no name (typed at a form, or a From
 * display name at the intake), because they go to addresses nobody has proven yet and
 * genuine Gatehouse mail must not carry someone's phishing text.
 *
 * The registration service sends the first three from its post-write step
 * (gateway/signup/registration.ts); the re-send and reset routes call this directly.
 *
 *   const mail = createSignupMail({ store, views, issuer: config.ISSUER, sendMail });
 *   await mail.invite(customer);
 */
import type { Customer, Store } from '../../adapters/store.ts';
import type { Views } from '../http/views.ts';
import { issueLinkToken } from './link-tokens.ts';
import { saveReturn, type ReturnParams } from './return-to.ts';

export const VERIFY_TTL_MS = 24 * 60 * 60 * 1000;
export const INVITE_TTL_MS = 7 * 24 * 3600 * 1000;
export const RESET_TTL_MS = 3600 * 1000;

/** The mails that carry a link to set a password: where the link points, how long it lives, what the mail says. */
const LINK_MAILS = {
  invite: {
    path: '/invite',
    ttlMs: INVITE_TTL_MS,
    subject: 'Set your password for the support portal',
    view: 'mail-invite',
    text: (link: string) =>
      `Hello,\n\nYou can now use the support portal. Set your password with this link (valid for 7 days, usable once):\n\n${link}\n\nIf you did not contact support, ignore this message.\n`,
  },
  'reset-password': {
    path: '/password/reset',
    ttlMs: RESET_TTL_MS,
    subject: 'Reset your password',
    view: 'mail-reset',
    text: (link: string) =>
      `Hello,\n\nSomeone (hopefully you) asked to reset the password of your support portal account. Choose a new password with this link (valid for 1 hour, usable once):\n\n${link}\n\nIf you did not ask for this, ignore this message: your password stays as it is.\n`,
  },
} as const;

export interface VerificationLink {
  /**
   * A password hash (and name) this link, and only this one, activates when followed;
   * `attempt` names the sign-up attempt that chose it (gateway/signup/portal/attempt.ts).
   */
  bind?: { passwordHash: string; name: string; attempt?: string };
  /** The authorization request to continue once verified. */
  returnTo?: ReturnParams | null;
}

export interface SignupMail {
  /** A verification link (24 h) for a pending account. */
  verification(customer: Customer, link: VerificationLink): Promise<void>;
  /** Tells the owner of an existing account that someone tried to sign up with the address. */
  accountExists(customer: Customer): Promise<void>;
  /** A new invite link (7 days) to set a first password; older invites stop working. */
  invite(customer: Customer): Promise<void>;
  /** A new reset link (1 hour); older reset links stop working. */
  passwordReset(customer: Customer): Promise<void>;
  /** The link (built by the caller, it names the sign-in it belongs to) that links an external sign-in to this account. */
  identityLink(customer: Customer, link: { href: string; label: string; minutes: number }): Promise<void>;
}

/** A message for the outbox (the shape of GatewayContext.sendMail's, named here so the registration service needs no context). */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

export interface SignupMailDeps {
  store: Pick<Store, 'tokens'>;
  views: Views;
  issuer: string;
  sendMail(message: MailMessage): Promise<void>;
  verifyTtlMs?: number;
}

export function createSignupMail(deps: SignupMailDeps): SignupMail {
  const { store, views, sendMail } = deps;
  const base = deps.issuer.replace(/\/+$/, '');
  const verifyTtlMs = deps.verifyTtlMs ?? VERIFY_TTL_MS;

  /** A new link of this kind (LINK_MAILS) mailed to the customer; their older links of the kind stop working. */
  async function sendFreshLink(customer: Customer, kind: keyof typeof LINK_MAILS): Promise<void> {
    const mail = LINK_MAILS[kind];
    await store.tokens.revokeFor(kind, customer.id);
    const { secret } = await issueLinkToken(store, kind, customer.id, mail.ttlMs);
    const link = `${base}${mail.path}/${secret}`;
    await sendMail({ to: customer.email, subject: mail.subject, text: mail.text(link), html: views.render(mail.view, { link }) });
  }

  return {
    async verification(customer, link) {
      const data = { ...(link.bind ?? {}), ...(await saveReturn(store, link.returnTo, verifyTtlMs)) };
      const { secret, expiresAt } = await issueLinkToken(store, 'verify-email', customer.id, verifyTtlMs, data);
      const href = `${base}/verify/${secret}`;
      const hours = Math.max(1, Math.round((expiresAt.getTime() - Date.now()) / 3_600_000));
      await sendMail({
        to: customer.email,
        subject: 'Confirm your email address',
        text: [
          'Hello,',
          '',
          'Confirm your email address to finish creating your account:',
          href,
          '',
          `The link works once and expires in ${hours} hours.`,
          'If you did not create an account, ignore this email: nothing happens without the link.',
        ].join('\n'),
        html: views.render('mail-verify', { link: href, hours }),
      });
    },

    async accountExists(customer) {
      const resetLink = `${base}/password/forgot`;
      await sendMail({
        to: customer.email,
        subject: 'Someone tried to create an account with your address',
        text: [
          'Hello,',
          '',
          'Someone tried to create a new account with this email address, which already has an account.',
          `If it was you: sign in with your existing account, or reset your password if you have forgotten it: ${resetLink}`,
          'If it was not you: you can ignore this email. Nothing was changed.',
        ].join('\n'),
        html: views.render('mail-existing', { resetLink }),
      });
    },

    async identityLink(customer, { href, label, minutes }) {
      await sendMail({
        to: customer.email,
        subject: 'Link your sign-in to your account',
        text: [
          'Hello,',
          '',
          `Someone (hopefully you) is signing in with ${label} and asked to link it to your account. To link it and sign in, open this link in the same browser within ${minutes} minutes (usable once):`,
          href,
          '',
          'If this was not you, ignore this message: nothing is linked without the link.',
        ].join('\n'),
        html: views.render('mail-link', { label, link: href, minutes }),
      });
    },

    invite: (customer) => sendFreshLink(customer, 'invite'),
    passwordReset: (customer) => sendFreshLink(customer, 'reset-password'),
  };
}
