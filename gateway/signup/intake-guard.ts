/**
 * The gate in front of the inbound-email sign-up path, for both intakes (the built-in
 * SMTP intake and POST /api/registrations/email), before the policy is asked:
 *
 *   - Gatehouse's own addresses are never customers: MAIL_FROM, the intake's addresses
 *     (MAIL_INTAKE_ADDRESSES, and the recipients of the message itself), and every address
 *     in their domains (a loop, or someone borrowing our name);
 *   - the sender must be authenticated (adapters/mail-auth.ts): the SMTP intake refuses
 *     unauthenticated mail itself, the API passes the trusted relay's verdict here;
 *   - each sender domain gets MAIL_INTAKE_DOMAIN_LIMIT messages an hour (then 429, which
 *     the SMTP intake answers with 451 so the sending MTA retries later).
 *
 * A refusal registers nobody and is audited as `intake.rejected` with its reason.
 *
 *   const gate = await guardIntakeSender(ctx, { email, auth, via: 'smtp-intake', recipients });
 *   if (!gate.ok) return;   // audited
 */
import { canonicalizeEmail, domainMatches } from '../../policies/index.ts';
import type { SenderAuthVerdict } from '../../adapters/mail-auth.ts';
import type { Config } from '../runtime/config.ts';
import type { GatewayContext } from '../runtime/context.ts';

export type IntakeGate = { ok: true } | { ok: false; reason: string };

export interface IntakeAttempt {
  email: string;
  messageId?: string;
  /** The message's own recipients (SMTP intake). */
  recipients?: string[];
  /** The sender's authentication, when this path checks it here (null: already checked, or the API client vouches). */
  auth: SenderAuthVerdict | null;
  /** Who reported the sender (`smtp-intake`, `client:<id>`). */
  via: string;
  ip?: string;
}

/** MAIL_FROM ("Name <addr>" or a bare address) and the intake's addresses, canonical. */
export function ownAddresses(config: Pick<Config, 'MAIL_FROM' | 'intakeAddresses'>): string[] {
  const mailFrom = /<([^>]+)>/.exec(config.MAIL_FROM)?.[1] ?? config.MAIL_FROM;
  return [mailFrom, ...config.intakeAddresses].map((a) => canonicalizeEmail(a.trim())).flatMap((c) => (c.ok ? [c.email] : []));
}

/** The audit event of a refused sender (also written by the SMTP intake for unauthenticated mail). */
export async function recordIntakeRejection(ctx: Pick<GatewayContext, 'audit'>, attempt: Omit<IntakeAttempt, 'auth' | 'recipients'>, reason: string, domain: string | null): Promise<void> {
  await ctx.audit('intake.rejected', {
    actor: attempt.via,
    target: attempt.email.slice(0, 320),
    data: { reason, domain, ...(attempt.messageId ? { messageId: attempt.messageId } : {}), ...(attempt.ip ? { ip: attempt.ip } : {}) },
  });
}

export async function guardIntakeSender(ctx: Pick<GatewayContext, 'config' | 'limits' | 'audit'>, attempt: IntakeAttempt): Promise<IntakeGate> {
  const refuse = async (reason: string, domain: string | null): Promise<IntakeGate> => {
    await recordIntakeRejection(ctx, attempt, reason, domain);
    return { ok: false, reason };
  };
  const canonical = canonicalizeEmail(attempt.email);
  // An address that is not one is left to the registration service (invalid_email).
  if (!canonical.ok) return { ok: true };
  const own = [...ownAddresses(ctx.config), ...(attempt.recipients ?? []).map((r) => canonicalizeEmail(r)).flatMap((c) => (c.ok ? [c.email] : []))];
  const ownDomains = new Set(ownAddresses(ctx.config).map((a) => a.slice(a.lastIndexOf('@') + 1)));
  if (own.includes(canonical.email) || [...ownDomains].some((d) => domainMatches(d, canonical.domain, true))) {
    return refuse('own_address', canonical.domain);
  }
  if (attempt.auth && !attempt.auth.pass) return refuse(attempt.auth.reason, attempt.auth.domain);
  if (attempt.auth?.pass && attempt.auth.domain !== canonical.domain) return refuse('author_mismatch', attempt.auth.domain);
  await ctx.limits.hit('intakeDomain', canonical.domain);
  return { ok: true };
}
