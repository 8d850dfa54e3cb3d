/**
 * admission(decision, hold): the pending-until-proven rule as a table of
 * (policy, method, verified address, hold) -> written or not, active or pending, with
 * what. Decisions come from evaluate() on a real snapshot, so a row reads as the
 * behaviour a path gets.
 */
import test from 'ava';
import { admission, awaitsProof, type Hold } from '../../policies/admission.ts';
import { evaluate } from '../../policies/evaluate.ts';
import type { Decision, Policy, SignupMethod } from '../../policies/types.ts';
import { company, denylist, policy, services, snapshotOf } from './fixtures.ts';

const WORLD = {
  companies: [company('acme', ['corp.com'], { services: ['s-acme'] })],
  services: services('s-acme', 's-default'),
  denylist: denylist('spam.com'),
};
const POLICIES = {
  anyone: policy('anyone', { defaultServices: ['s-default'] }),
  companies: policy('companies'),
  off: policy('off'),
} satisfies Record<string, Policy>;

type Expect =
  | { admit: false }
  | { admit: true; status: 'active'; companyId: string | null; services: string[]; portalAccess: boolean }
  | { admit: true; status: 'pending' };

interface Row {
  policy: keyof typeof POLICIES;
  method: SignupMethod;
  email: string;
  verified: boolean;
  hold: Hold;
  expect: Expect;
}

const PENDING = { admit: true, status: 'pending' } as const;
const REFUSED = { admit: false } as const;
const active = (companyId: string | null, svc: string[], portalAccess = true) => ({ admit: true as const, status: 'active' as const, companyId, services: svc, portalAccess });

const ROWS: Row[] = [
  // Google / AD / agent: proven or vouched for; allowed -> active, denied -> nothing.
  { policy: 'companies', method: 'google', email: 'ann@corp.com', verified: true, hold: 'never', expect: active('acme', ['s-acme']) },
  { policy: 'anyone', method: 'google', email: 'ann@other.org', verified: true, hold: 'never', expect: active(null, ['s-default']) },
  { policy: 'companies', method: 'google', email: 'ann@other.org', verified: true, hold: 'never', expect: REFUSED },
  { policy: 'companies', method: 'portal', email: 'ann@corp.com', verified: false, hold: 'never', expect: REFUSED },
  { policy: 'off', method: 'agent', email: 'ann@corp.com', verified: false, hold: 'never', expect: active('acme', ['s-acme']) },
  // The portal form: always held pending, joining nothing, until the link is followed.
  { policy: 'anyone', method: 'portal', email: 'ann@corp.com', verified: false, hold: 'always', expect: PENDING },
  { policy: 'anyone', method: 'portal', email: 'ann@other.org', verified: false, hold: 'always', expect: PENDING },
  { policy: 'companies', method: 'portal', email: 'ann@corp.com', verified: false, hold: 'always', expect: PENDING },
  { policy: 'companies', method: 'portal', email: 'ann@other.org', verified: false, hold: 'always', expect: REFUSED },
  { policy: 'off', method: 'portal', email: 'ann@corp.com', verified: false, hold: 'always', expect: REFUSED },
  { policy: 'anyone', method: 'portal', email: 'x@spam.com', verified: false, hold: 'always', expect: REFUSED },
  // Inbound email: active when allowed as it is, pending only when a company join waits for proof.
  { policy: 'anyone', method: 'email', email: 'ann@corp.com', verified: false, hold: 'until-proven', expect: active(null, ['s-default']) },
  { policy: 'anyone', method: 'email', email: 'ann@other.org', verified: false, hold: 'until-proven', expect: active(null, ['s-default']) },
  { policy: 'companies', method: 'email', email: 'ann@corp.com', verified: false, hold: 'until-proven', expect: PENDING },
  { policy: 'companies', method: 'email', email: 'ann@other.org', verified: false, hold: 'until-proven', expect: REFUSED },
  { policy: 'companies', method: 'email', email: 'x@spam.com', verified: false, hold: 'until-proven', expect: REFUSED },
  { policy: 'off', method: 'email', email: 'ann@corp.com', verified: false, hold: 'until-proven', expect: REFUSED },
];

for (const row of ROWS) {
  const title = `${row.policy} / ${row.method} / ${row.email}${row.verified ? '' : ' (unproven)'} / hold ${row.hold} -> ${row.expect.admit ? row.expect.status : 'not written'}`;
  test(title, (t) => {
    const decision = evaluate({ method: row.method, email: row.email, emailVerified: row.verified }, snapshotOf({ ...WORLD, policy: POLICIES[row.policy] }));
    const result = admission(decision, row.hold);
    if (!row.expect.admit) {
      t.deepEqual(result, { admit: false });
      return;
    }
    t.true(result.admit);
    if (!result.admit) return;
    t.is(result.email, row.email);
    t.is(result.status, row.expect.status);
    if (row.expect.status === 'pending') {
      t.like(result, { companyId: null, services: [], portalAccess: false }, 'a pending account joins nothing and holds nothing');
    } else {
      t.like(result, { companyId: row.expect.companyId, services: row.expect.services, portalAccess: row.expect.portalAccess });
    }
  });
}

test('an invalid address is never written, whatever the hold', (t) => {
  const decision = evaluate({ method: 'portal', email: 'not an address', emailVerified: false }, snapshotOf({ ...WORLD, policy: POLICIES.anyone }));
  for (const hold of ['never', 'always', 'until-proven'] as const) t.deepEqual(admission(decision, hold), { admit: false }, hold);
});

test('awaitsProof: only an email_unverified denial that names pending verification waits for proof', (t) => {
  const base: Decision = { outcome: 'deny', reason: 'email_unverified', services: [], portalAccess: false, trace: [] };
  t.true(awaitsProof({ ...base, verificationPending: true }));
  t.false(awaitsProof(base));
  t.false(awaitsProof({ ...base, reason: 'domain_not_accepted', verificationPending: true }));
  t.false(awaitsProof({ ...base, outcome: 'allow', reason: 'allowed_anyone', verificationPending: true }), 'an allowed decision does not wait');
});
