/**
 * Identity resolution as pure policy (issue #11): resolveIdentity() in a table of
 * expected outcomes, one row per situation (every attack of the issue among them),
 * then a sweep over every combination checking the rules that must hold whatever the
 * combination. What each source proves is in sources.test.ts.
 */
import test from 'ava';
import { isPrivileged, pendingHolds, resolveIdentity, type AccountFacts, type IdentityInput, type IdentityRefusal, type IdentityResolution, type LinkProof } from '../../policies/identity.ts';

const NOW = new Date('2030-01-01T12:00:00Z');
const LATER = new Date(NOW.getTime() + 3600_000);
const EARLIER = new Date(NOW.getTime() - 1);
const KEY = { issuer: 'https://accounts.google.com', subject: '1001' };

function account(overrides: Partial<AccountFacts> = {}): AccountFacts {
  return { id: 'acct', roles: [], status: 'active', hasPassword: true, identities: [], ...overrides };
}

const ADMIN = account({ id: 'admin', roles: ['admin'] });
const AGENT = account({ id: 'agent', roles: ['agent'] });
const CUSTOMER = account({ id: 'cust' });
const NO_PASSWORD = account({ id: 'nopw', hasPassword: false });
const DISABLED = account({ id: 'off', status: 'disabled' });
const PENDING_LIVE = account({ id: 'pend', status: 'pending', pendingUntil: LATER });
const PENDING_EXPIRED = account({ id: 'stale', status: 'pending', pendingUntil: EARLIER });
const PENDING_NO_LINK = account({ id: 'nolink', status: 'pending', pendingUntil: null });
const LINKED_ELSEWHERE = account({ id: 'other', identities: [{ issuer: KEY.issuer, subject: '2002' }] });

function input(overrides: Partial<IdentityInput>): IdentityInput {
  return {
    source: 'google', key: KEY, email: 'ann@corp.com', addressProven: true, sourceAllowed: true,
    byKey: null, linkedByAdmin: false, byEmail: null, proof: 'none', now: NOW, ...overrides,
  };
}

interface Row {
  label: string;
  input: Partial<IdentityInput>;
  expect: Partial<IdentityResolution> & { action: IdentityResolution['action'] };
}

const refuse = (reason: IdentityRefusal) => ({ action: 'refuse' as const, reason });

const ROWS: Row[] = [
  // The stable key decides first.
  { label: 'known identity signs in', input: { byKey: CUSTOMER }, expect: { action: 'sign_in', reason: 'known_identity', accountId: 'cust' } },
  { label: 'known identity wins over another account holding the address', input: { byKey: CUSTOMER, byEmail: NO_PASSWORD }, expect: { action: 'sign_in', accountId: 'cust' } },
  { label: 'known identity, address now absent', input: { byKey: CUSTOMER, email: undefined }, expect: { action: 'sign_in', accountId: 'cust' } },
  { label: 'known identity of a disabled account', input: { byKey: DISABLED }, expect: refuse('account_disabled') },
  { label: 'known identity of a pending account', input: { byKey: PENDING_LIVE }, expect: refuse('account_pending') },
  // Privileged accounts: only an admin's console link lets an external source in.
  { label: 'ATTACK: directory entry with the admin\'s address, no proof', input: { source: 'directory', byEmail: ADMIN }, expect: refuse('privileged_account') },
  { label: 'ATTACK: directory entry with the admin\'s address, address proven', input: { source: 'directory', byEmail: ADMIN, addressProven: true }, expect: refuse('privileged_account') },
  { label: 'connector assertion with the admin\'s address', input: { source: 'connector', byEmail: ADMIN }, expect: refuse('privileged_account') },
  { label: 'admin address even with the admin\'s password in this browser', input: { byEmail: ADMIN, proof: 'password' }, expect: refuse('privileged_account') },
  { label: 'admin address even with a mailed link consumed', input: { byEmail: ADMIN, proof: 'mailed_link' }, expect: refuse('privileged_account') },
  { label: 'agent address', input: { byEmail: AGENT, proof: 'password' }, expect: refuse('privileged_account') },
  { label: 'identity on an admin account, not linked by an admin', input: { byKey: ADMIN }, expect: refuse('privileged_account') },
  { label: 'identity on an agent account, not linked by an admin', input: { byKey: AGENT }, expect: refuse('privileged_account') },
  { label: 'identity an admin linked from the console to an admin', input: { byKey: ADMIN, linkedByAdmin: true }, expect: { action: 'sign_in', accountId: 'admin' } },
  { label: 'identity an admin linked to an agent', input: { byKey: AGENT, linkedByAdmin: true }, expect: { action: 'sign_in', accountId: 'agent' } },
  { label: 'admin-linked identity of a disabled admin', input: { byKey: { ...ADMIN, status: 'disabled' }, linkedByAdmin: true }, expect: refuse('account_disabled') },
  // The source switched off (AD outside anyone mode, or AD unticked).
  { label: 'ATTACK: earlier AD user, AD switched off', input: { source: 'directory', sourceAllowed: false, byKey: CUSTOMER }, expect: refuse('source_disabled') },
  { label: 'earlier connector user, AD switched off', input: { source: 'connector', sourceAllowed: false, byKey: CUSTOMER }, expect: refuse('source_disabled') },
  { label: 'new AD user, AD switched off', input: { source: 'directory', sourceAllowed: false }, expect: refuse('source_disabled') },
  // No account: register, verified only as far as the source proved it.
  { label: 'new verified address', input: {}, expect: { action: 'register', reason: 'new_address', email: 'ann@corp.com', emailVerified: true } },
  { label: 'new address canonicalised', input: { email: 'Ann@CORP.com.' }, expect: { action: 'register', email: 'ann@corp.com' } },
  { label: 'ATTACK: directory address outside its own domains registers unverified', input: { source: 'directory', email: 'mallory@victim.com', addressProven: false }, expect: { action: 'register', emailVerified: false } },
  { label: 'no address', input: { email: undefined }, expect: refuse('no_email') },
  { label: 'blank address', input: { email: '   ' }, expect: refuse('no_email') },
  { label: 'invalid address', input: { email: 'two@@corp.com' }, expect: refuse('invalid_email') },
  // An active account holding the address: linking needs proof in this browser.
  { label: 'existing account, no proof: password or mailed link offered', input: { byEmail: CUSTOMER }, expect: { action: 'link_requires_proof', reason: 'existing_account', accountId: 'cust', offer: ['password', 'mailed_link'] } },
  { label: 'existing account, Google-proven address is not proof of the account', input: { byEmail: CUSTOMER, addressProven: true }, expect: { action: 'link_requires_proof' } },
  { label: 'ATTACK: existing account, directory asserts its address', input: { source: 'directory', byEmail: CUSTOMER }, expect: { action: 'link_requires_proof' } },
  { label: 'existing account without a password: only the mailed link', input: { byEmail: NO_PASSWORD }, expect: { action: 'link_requires_proof', offer: ['mailed_link'] } },
  { label: 'existing account, its password checked', input: { byEmail: CUSTOMER, proof: 'password' }, expect: { action: 'link', reason: 'linked_with_password', accountId: 'cust' } },
  { label: 'existing account, a mailed link consumed', input: { byEmail: CUSTOMER, proof: 'mailed_link' }, expect: { action: 'link', reason: 'linked_with_mailed_link', accountId: 'cust' } },
  { label: 'password proof claimed for an account without a password', input: { byEmail: NO_PASSWORD, proof: 'password' }, expect: { action: 'link_requires_proof', offer: ['mailed_link'] } },
  { label: 'existing account without a password, mailed link consumed', input: { byEmail: NO_PASSWORD, proof: 'mailed_link' }, expect: { action: 'link', accountId: 'nopw' } },
  { label: 'existing account linked to another identity of the same issuer', input: { byEmail: LINKED_ELSEWHERE, proof: 'password' }, expect: refuse('identity_conflict') },
  { label: 'existing account linked to another issuer only', input: { byEmail: account({ identities: [{ issuer: 'ad-connector', subject: 'x' }] }), proof: 'password' }, expect: { action: 'link' } },
  { label: 'disabled account holding the address', input: { byEmail: DISABLED, proof: 'password' }, expect: refuse('account_disabled') },
  // ATTACK: a pending sign-up holding the address forever.
  { label: 'live pending sign-up, Google-verified address: taken over', input: { byEmail: PENDING_LIVE }, expect: { action: 'take_over_pending', reason: 'pending_address_proven', accountId: 'pend', email: 'ann@corp.com' } },
  { label: 'live pending sign-up, AD-proven address: taken over', input: { source: 'directory', byEmail: PENDING_LIVE, addressProven: true }, expect: { action: 'take_over_pending', reason: 'pending_address_proven' } },
  { label: 'live pending sign-up, unproven address: only the mailed link', input: { source: 'directory', byEmail: PENDING_LIVE, addressProven: false }, expect: { action: 'link_requires_proof', reason: 'pending_account', offer: ['mailed_link'] } },
  { label: 'live pending sign-up, its pending password proves nothing', input: { byEmail: PENDING_LIVE, addressProven: false, proof: 'password' }, expect: { action: 'link_requires_proof', offer: ['mailed_link'] } },
  { label: 'live pending sign-up, mailed link consumed: taken over', input: { byEmail: PENDING_LIVE, addressProven: false, proof: 'mailed_link' }, expect: { action: 'take_over_pending', reason: 'pending_mailed_link' } },
  { label: 'expired pending sign-up holds nothing (proven)', input: { byEmail: PENDING_EXPIRED }, expect: { action: 'register', reason: 'pending_expired', emailVerified: true, replacesAccountId: 'stale' } },
  { label: 'expired pending sign-up holds nothing (unproven)', input: { byEmail: PENDING_EXPIRED, addressProven: false }, expect: { action: 'register', reason: 'pending_expired', emailVerified: false, replacesAccountId: 'stale' } },
  { label: 'pending sign-up without a live link holds nothing', input: { byEmail: PENDING_NO_LINK }, expect: { action: 'register', reason: 'pending_expired', replacesAccountId: 'nolink' } },
  { label: 'pending sign-up expiring exactly now holds nothing', input: { byEmail: account({ id: 'edge', status: 'pending', pendingUntil: NOW }) }, expect: { action: 'register', replacesAccountId: 'edge' } },
];

for (const row of ROWS) {
  test(`resolveIdentity: ${row.label}`, (t) => {
    t.like(resolveIdentity(input(row.input)), row.expect);
  });
}

test('resolveIdentity sweep: the rules hold for every combination', (t) => {
  const accounts = [null, ADMIN, AGENT, CUSTOMER, NO_PASSWORD, DISABLED, PENDING_LIVE, PENDING_EXPIRED, LINKED_ELSEWHERE];
  const proofs: LinkProof[] = ['none', 'password', 'mailed_link'];
  let checked = 0;
  for (const source of ['google', 'directory', 'connector'] as const) {
    for (const sourceAllowed of [true, false]) {
      for (const addressProven of [true, false]) {
        for (const byKey of accounts) {
          for (const linkedByAdmin of [true, false]) {
            for (const byEmail of accounts) {
              for (const proof of proofs) {
                const r = resolveIdentity(input({ source, sourceAllowed, addressProven, byKey, linkedByAdmin, byEmail, proof }));
                const where = `${source} allowed=${sourceAllowed} proven=${addressProven} key=${byKey?.id} admin-link=${linkedByAdmin} email=${byEmail?.id} proof=${proof} -> ${JSON.stringify(r)}`;
                checked += 1;
                if (!sourceAllowed && r.action !== 'refuse') t.fail(`a switched-off source signed someone in: ${where}`);
                const target = 'accountId' in r ? [byKey, byEmail].find((a) => a?.id === r.accountId) : undefined;
                const entered = r.action === 'sign_in' || r.action === 'link' || r.action === 'take_over_pending';
                if (entered && target && isPrivileged(target) && !(r.action === 'sign_in' && linkedByAdmin)) t.fail(`a privileged account was entered without an admin link: ${where}`);
                if (r.action === 'link' && proof === 'none') t.fail(`linked without proof: ${where}`);
                if (r.action === 'link' && byEmail?.status !== 'active') t.fail(`linked to an account that is not active: ${where}`);
                if (r.action === 'take_over_pending' && !addressProven && proof !== 'mailed_link') t.fail(`pending account taken over without proof of the address: ${where}`);
                if (r.action === 'sign_in' && r.accountId !== byKey?.id) t.fail(`signed in by something other than the key: ${where}`);
                if (entered && target?.status === 'disabled') t.fail(`a disabled account was entered: ${where}`);
                if (r.action === 'register' && byEmail && pendingHolds(byEmail, NOW)) t.fail(`registered over an address that is held: ${where}`);
                if (r.action === 'register' && r.emailVerified !== addressProven) t.fail(`registered with a proof the source did not give: ${where}`);
              }
            }
          }
        }
      }
    }
  }
  t.is(checked, 3 * 2 * 2 * 9 * 2 * 9 * 3);
});

test('pendingHolds: only a pending account with a live link holds its address', (t) => {
  t.true(pendingHolds({ status: 'active' }, NOW));
  t.true(pendingHolds({ status: 'disabled', pendingUntil: EARLIER }, NOW));
  t.true(pendingHolds({ status: 'pending', pendingUntil: LATER }, NOW));
  t.false(pendingHolds({ status: 'pending', pendingUntil: NOW }, NOW));
  t.false(pendingHolds({ status: 'pending', pendingUntil: null }, NOW));
  t.false(pendingHolds({ status: 'pending' }, NOW));
});
