/**
 * policyImpact(): recorded attempts decided under the policy in force and a proposed
 * one, counted by how they move. Tables of (change, attempt) -> expected move.
 */
import test from 'ava';
import { policyImpact, type Attempt, type Policy, type RecordedAttempt } from '../../policies/index.ts';
import { company, denylist, policy, services, snapshotOf } from './fixtures.ts';

const world = {
  companies: [company('acme', ['acme.example'], { services: ['desk'] }), company('closed', ['closed.example'], { selfRegistration: { permitted: false } })],
  services: services('desk', 'general'),
  denylist: denylist('spam.example'),
};

const at = '2024-05-01T10:00:00.000Z';
const attempt = (method: Attempt['method'], email: string, emailVerified = true): RecordedAttempt => ({ attempt: { method, email, emailVerified }, at });

type Move = 'newlyAllowed' | 'newlyDenied' | 'changed' | 'unchanged';

// [what changes, before, after, the attempt, expected move]
const TABLE: Array<[string, Policy, Policy, RecordedAttempt, Move]> = [
  ['off -> anyone lets a stranger in', policy('off'), policy('anyone'), attempt('portal', 'jo@else.example'), 'newlyAllowed'],
  ['anyone -> off shuts a stranger out', policy('anyone'), policy('off'), attempt('google', 'jo@else.example'), 'newlyDenied'],
  ['anyone -> companies keeps a company domain in, with the same grant', policy('anyone'), policy('companies'), attempt('portal', 'ann@acme.example'), 'unchanged'],
  ['anyone -> companies shuts a stranger out', policy('anyone'), policy('companies'), attempt('portal', 'jo@else.example'), 'newlyDenied'],
  ['anyone -> companies: a company that does not permit it', policy('anyone'), policy('companies'), attempt('portal', 'bo@closed.example'), 'newlyDenied'],
  ['companies -> anyone lets a stranger in', policy('companies'), policy('anyone'), attempt('email', 'jo@else.example'), 'newlyAllowed'],
  ['unverified company address: held for verification both ways', policy('anyone'), policy('companies'), attempt('portal', 'ann@acme.example', false), 'unchanged'],
  ['the denylist holds under any mode', policy('off'), policy('anyone'), attempt('portal', 'x@spam.example'), 'unchanged'],
  ['google off refuses google sign-ups only', policy('anyone'), policy('anyone', { google: false }), attempt('google', 'jo@else.example'), 'newlyDenied'],
  ['google off leaves portal sign-ups alone', policy('anyone'), policy('anyone', { google: false }), attempt('portal', 'jo@else.example'), 'unchanged'],
  ['a new default service changes the grant', policy('anyone'), policy('anyone', { defaultServices: ['general'] }), attempt('portal', 'jo@else.example'), 'changed'],
  ['no more joining by domain changes the company', policy('anyone'), policy('anyone', { joinCompanyByDomain: false }), attempt('portal', 'ann@acme.example'), 'changed'],
  ['email registrants lose portal access', policy('anyone'), policy('anyone', { grantPortalAccess: false }), attempt('email', 'jo@else.example'), 'changed'],
  ['agents may always add', policy('anyone'), policy('off'), attempt('agent', 'jo@else.example'), 'unchanged'],
  ['refused both times, for another reason', policy('off'), policy('companies'), attempt('portal', 'jo@else.example'), 'unchanged'],
  ['an invalid address stays refused', policy('off'), policy('anyone'), attempt('portal', 'not an address'), 'unchanged'],
];

for (const [title, before, after, recorded, expected] of TABLE) {
  test(`impact: ${title}`, (t) => {
    const impact = policyImpact([recorded], snapshotOf({ ...world, policy: before }), snapshotOf({ ...world, policy: after }));
    t.is(impact.attempts, 1);
    const moves: Move[] = ['newlyAllowed', 'newlyDenied', 'changed'];
    const got = moves.find((m) => impact[m as Exclude<Move, 'unchanged'>].count === 1) ?? 'unchanged';
    t.is(got, expected);
    t.is(impact.unchanged, expected === 'unchanged' ? 1 : 0);
  });
}

test('impact: counts attempts and distinct addresses, keeps a few examples with both decisions', (t) => {
  const attempts = [
    attempt('portal', 'a@else.example'),
    attempt('google', 'A@Else.example'),
    attempt('portal', 'b@else.example'),
    attempt('portal', 'c@else.example'),
    attempt('portal', 'ann@acme.example'),
    attempt('portal', 'x@spam.example'),
  ];
  const impact = policyImpact(attempts, snapshotOf({ ...world, policy: policy('anyone') }), snapshotOf({ ...world, policy: policy('off') }), { examples: 2 });
  t.is(impact.attempts, 6);
  t.is(impact.newlyDenied.count, 5);
  t.is(impact.newlyDenied.addresses, 4, 'the same address twice counts once');
  t.is(impact.unchanged, 1);
  t.is(impact.newlyDenied.examples.length, 2);
  t.like(impact.newlyDenied.examples[0], { email: 'a@else.example', method: 'portal', before: { outcome: 'allow', reason: 'allowed_anyone' }, after: { outcome: 'deny', reason: 'registration_disabled' } });
  t.is(impact.newlyAllowed.count + impact.changed.count, 0);
});

test('impact: nothing recorded, nothing moves', (t) => {
  const impact = policyImpact([], snapshotOf({ policy: policy('off') }), snapshotOf({ policy: policy('anyone') }));
  t.deepEqual(impact, { attempts: 0, unchanged: 0, newlyAllowed: { count: 0, addresses: 0, examples: [] }, newlyDenied: { count: 0, addresses: 0, examples: [] }, changed: { count: 0, addresses: 0, examples: [] } });
});
