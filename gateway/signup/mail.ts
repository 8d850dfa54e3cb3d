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

type Translate = ReturnType<Views['current']>['t'];

/** The mails that carry a link to set a password: where the link points, how long it lives, what the mail says. */
const LINK_MAILS = {
  invite: {
    path: '/invite',
    ttlMs: INVITE_TTL_MS,
    view: 'mail-invite',
    compose: (t: Translate, brand: string, link: string) => ({
      subject: t('mail.invite.subject', { brand }),
      text: [t('mail.hello'), '', t('mail.invite.intro', { brand, days: 7 }), '', link, '', t('mail.invite.ignore'), ''].join('\n'),
      data: { days: 7 },
    }),
  },
  'reset-password': {
    path: '/password/reset',
    ttlMs: RESET_TTL_MS,
    view: 'mail-reset',
    compose: (t: Translate, brand: string, link: string) => ({
      subject: t('mail.reset.subject'),
      text: [t('mail.hello'), '', t('mail.reset.intro', { brand, hours: 1 }), '', link, '', t('mail.reset.ignore'), ''].join('\n'),
      data: { hours: 1 },
    }),
  },
} as const;

/** The text footer every mail to a customer ends with: the portal it is from, its support address. */
function footer(t: Translate, brand: ReturnType<Views['current']>['brand']): string {
  return ['', '--', t('mail.sentBy', { brand: brand.name }), ...(brand.supportEmail ? [`${t('layout.support')}: ${brand.supportEmail}`] : [])].join('\n');
}

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
    const { t, brand } = views.current();
    const composed = mail.compose(t, brand.name, link);
    await sendMail({ to: customer.email, subject: composed.subject, text: composed.text + footer(t, brand), html: views.render(mail.view, { link, ...composed.data }) });
  }

  return {
    async verification(customer, link) {
      const data = { ...(link.bind ?? {}), ...(await saveReturn(store, link.returnTo, verifyTtlMs)) };
      const { secret, expiresAt } = await issueLinkToken(store, 'verify-email', customer.id, verifyTtlMs, data);
      const href = `${base}/verify/${secret}`;
      const hours = Math.max(1, Math.round((expiresAt.getTime() - Date.now()) / 3_600_000));
      const { t, brand } = views.current();
      await sendMail({
        to: customer.email,
        subject: t('mail.verify.subject'),
        text: [
          t('mail.hello'),
          '',
          t('mail.verify.intro'),
          href,
          '',
          t('mail.verify.expires', { hours, expiresAt }),
          t('mail.verify.ignore'),
        ].join('\n') + footer(t, brand),
        html: views.render('mail-verify', { link: href, hours, expiresAt }),
      });
    },

    async accountExists(customer) {
      const resetLink = `${base}/password/forgot`;
      const { t, brand } = views.current();
      await sendMail({
        to: customer.email,
        subject: t('mail.existing.subject'),
        text: [
          t('mail.hello'),
          '',
          t('mail.existing.intro'),
          `${t('mail.existing.ifYou')} ${resetLink}`,
          t('mail.existing.notYou'),
        ].join('\n') + footer(t, brand),
        html: views.render('mail-existing', { resetLink }),
      });
    },

    async identityLink(customer, { href, label, minutes }) {
      const { t, brand } = views.current();
      await sendMail({
        to: customer.email,
        subject: t('mail.link.subject'),
        text: [
          t('mail.hello'),
          '',
          t('mail.link.intro', { label, minutes }),
          href,
          '',
          t('mail.link.ignore'),
        ].join('\n') + footer(t, brand),
        html: views.render('mail-link', { label, link: href, minutes }),
      });
    },

    invite: (customer) => sendFreshLink(customer, 'invite'),
    passwordReset: (customer) => sendFreshLink(customer, 'reset-password'),
  };
}
