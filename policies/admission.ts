/**
 * admission(decision, hold) -> how the account is written: the pending-until-proven rule,
 * the pure companion of evaluate(). evaluate() says whether the policy allows an address
 * and what it joins; admission() says, for the path asking, whether an account is
 * written at all and whether it is held pending (joining nothing, holding nothing)
 * until its address is proven by an emailed link.
 *
 * Holds, by path:
 *   never          the address is proven already (Google, Active Directory) or vouched
 *                  for (agent add): an allowed decision is written active, a denied one
 *                  is not written
 *   always         the portal form: every allowed sign-up is held pending, and so is one
 *                  the policy would allow once the address is proven (companies mode)
 *   until-proven   inbound email: active when the policy allows it as it is, pending when
 *                  it allows it only once the address is proven
 *
 *   admission(evaluate({ method: 'email', email, emailVerified: false }, snapshot), 'until-proven')
 *     // companies mode -> { admit: true, status: 'pending', companyId: null, services: [], portalAccess: false }
 */
import type { Decision } from './types.ts';

export type Hold = 'never' | 'always' | 'until-proven';

export type Admission =
  | { admit: false }
  | { admit: true; email: string; status: 'active'; companyId: string | null; services: string[]; portalAccess: boolean }
  | { admit: true; email: string; status: 'pending'; companyId: null; services: []; portalAccess: false };

/** The policy refused only because the address is not proven yet, and allows it once it is. */
export function awaitsProof(decision: Pick<Decision, 'outcome' | 'reason' | 'verificationPending'>): boolean {
  return decision.outcome === 'deny' && decision.reason === 'email_unverified' && decision.verificationPending === true;
}

export function admission(decision: Decision, hold: Hold): Admission {
  if (decision.email === undefined) return { admit: false };
  const waiting = awaitsProof(decision);
  const pending = hold === 'always' || (hold === 'until-proven' && waiting);
  if (decision.outcome !== 'allow' && !(pending && waiting)) return { admit: false };
  if (pending) return { admit: true, email: decision.email, status: 'pending', companyId: null, services: [], portalAccess: false };
  return { admit: true, email: decision.email, status: 'active', companyId: decision.companyId ?? null, services: decision.services, portalAccess: decision.portalAccess };
}
