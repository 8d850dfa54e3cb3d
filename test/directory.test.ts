/**
 * The LDAP directory adapter against a real slapd (test/helpers/ldap-server.ts) that
 * carries the AD logon attributes: who gets in, who gets the one generic refusal, and
 * that a dead or silent directory answers `unavailable` in bounded time.
 */
import test from 'ava';
import { createServer, type Server, type Socket } from 'node:net';
import {
  buildSearchFilter,
  createLdapDirectory,
  escapeFilterValue,
  guidToString,
  searchName,
  type LdapDirectoryConfig,
} from '../adapters/directory.ts';
import { startLdapServer, type LdapTestServer } from './helpers/ldap-server.ts';

const CONNECT_TIMEOUT_MS = 1000;
const TIME_LIMIT_MS = 1500;
/** The adapter promises an answer within connect + time limit; allow scheduling slack. */
const ANSWER_BOUND_MS = CONNECT_TIMEOUT_MS + TIME_LIMIT_MS + 500;

let ldap: LdapTestServer;
/** jdoe's objectGUID as stored (raw bytes). */
let jdoeGuid: Buffer;

test.before(async () => {
  ldap = await startLdapServer();
  const jdoe = await ldap.addUser({
    sAMAccountName: 'jdoe',
    userPrincipalName: 'jdoe@corp.test',
    mail: 'jane.doe@corp.test',
    displayName: 'Jane Doe',
    password: 'Correct horse 1',
  });
  jdoeGuid = jdoe.objectGuid!;
  await ldap.addUser({
    sAMAccountName: 'rroe',
    userPrincipalName: 'richard@corp.test',
    mail: 'richard.roe@corp.test',
    displayName: 'Richard Roe',
    password: 'Battery staple 2',
  });
  await ldap.addUser({
    sAMAccountName: 'gone',
    userPrincipalName: 'gone@corp.test',
    mail: 'gone@corp.test',
    displayName: 'Gone Away',
    password: 'Still valid 3',
    disabled: true,
  });
  await ldap.addUser({
    sAMAccountName: 'ctr',
    userPrincipalName: 'ctr@corp.test',
    mail: 'contractor@corp.test',
    displayName: 'Con Tractor',
    password: 'Contract pw 4',
    ou: 'contractors',
    // A plain OpenLDAP entry: no objectGUID.
    objectGuid: null,
  });
});

test.after.always(async () => {
  await ldap?.stop();
});

function config(overrides: Partial<LdapDirectoryConfig> = {}): LdapDirectoryConfig {
  return {
    url: ldap.url,
    bindDn: ldap.adminDn,
    bindCredentials: ldap.adminPassword,
    searchBase: `ou=people,${ldap.baseDn}`,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    timeLimitMs: TIME_LIMIT_MS,
    ...overrides,
  };
}

function countAccepts(log: string): number {
  return log.split('\n').filter((line) => line.includes(' ACCEPT from ')).length;
}

/** slapd logs `BIND dn="<dn>"` for every bind it receives; counts those of one DN. */
/** Bind requests as `dn` (slapd logs a second BIND line when one succeeds: this counts requests only). */
function bindAttempts(log: string, dn: string): number {
  return log.split('\n').filter((line) => line.includes(` BIND dn="${dn}" method=`)).length;
}

function countBinds(log: string, dn: string): number {
  return log.split('\n').filter((line) => line.includes(` BIND dn="${dn}"`)).length;
}

/** Polls slapd's log until `check` holds; false after the deadline. */
async function logShows(check: (log: string) => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check(await ldap.readLog())) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

test.serial('empty and whitespace-only passwords (and empty logins) are refused without opening a connection', async (t) => {
  const directory = createLdapDirectory(config());
  const jdoeDn = `cn=jdoe,ou=people,${ldap.baseDn}`;
  // A real attempt first: how many connections one attempt opens, seen in slapd's log.
  const before = await ldap.readLog();
  t.like(await directory.authenticate('jdoe', 'Correct horse 1'), { ok: true });
  t.true(await logShows((log) => countBinds(log, jdoeDn) > countBinds(before, jdoeDn)), 'slapd log shows the real attempt');
  const afterReal = await ldap.readLog();
  const perAttempt = countAccepts(afterReal) - countAccepts(before);
  t.true(perAttempt >= 1);

  for (const [login, password] of [
    ['jdoe', ''],
    ['jdoe', '   '],
    ['jdoe', '\t\n'],
    ['', 'Correct horse 1'],
    ['   ', 'Correct horse 1'],
  ] as const) {
    t.deepEqual(await directory.authenticate(login, password), { ok: false, reason: 'invalid_credentials' }, `${JSON.stringify([login, password])}`);
  }
  // Another real attempt as the marker: once its user bind is logged, any connection the
  // refused inputs had opened (earlier) is logged too; only the marker's may be new.
  t.like(await directory.authenticate('jdoe', 'Correct horse 1'), { ok: true });
  t.true(await logShows((log) => countBinds(log, jdoeDn) > countBinds(afterReal, jdoeDn)), 'slapd log shows the marker attempt');
  t.is(countAccepts(await ldap.readLog()), countAccepts(afterReal) + perAttempt, 'no connection was opened for the refused inputs');
  await directory.close();
});

test('signs in by sAMAccountName and returns mail and displayName', async (t) => {
  const directory = createLdapDirectory(config());
  const result = await directory.authenticate('jdoe', 'Correct horse 1');
  t.deepEqual(result, {
    ok: true,
    user: {
      dn: `cn=jdoe,ou=people,${ldap.baseDn}`,
      login: 'jdoe',
      email: 'jane.doe@corp.test',
      name: 'Jane Doe',
      sAMAccountName: 'jdoe',
      userPrincipalName: 'jdoe@corp.test',
      objectGuid: guidToString(jdoeGuid),
    },
  });
  await directory.close();
});

test('returns objectGUID in AD\'s string form when the entry has one, null when it has none', async (t) => {
  // Microsoft's documented example GUID {3F2504E0-4F89-11D3-9A0C-0305E82C3301}, as stored (first three groups little-endian).
  t.is(guidToString(Buffer.from('e004253f894fd3119a0c0305e82c3301', 'hex')), '3f2504e0-4f89-11d3-9a0c-0305e82c3301');
  t.is(guidToString(Buffer.alloc(15)), null);
  const directory = createLdapDirectory(config({ searchBase: ldap.baseDn }));
  const jdoe = await directory.authenticate('jdoe', 'Correct horse 1');
  t.true(jdoe.ok && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(jdoe.user.objectGuid ?? ''));
  t.is(jdoe.ok ? jdoe.user.objectGuid : undefined, guidToString(jdoeGuid));
  t.like(await directory.authenticate('ctr', 'Contract pw 4'), { ok: true, user: { objectGuid: null } });
  await directory.close();
});

test('signs in by userPrincipalName, case-insensitively like AD', async (t) => {
  const directory = createLdapDirectory(config());
  const result = await directory.authenticate('Richard@Corp.Test', 'Battery staple 2');
  t.true(result.ok);
  if (result.ok) {
    t.is(result.user.email, 'richard.roe@corp.test');
    t.is(result.user.name, 'Richard Roe');
    t.is(result.user.sAMAccountName, 'rroe');
    t.is(result.user.login, 'Richard@Corp.Test');
  }
  await directory.close();
});

test('a down-level logon name (CORP\\jdoe) is searched as its user part', async (t) => {
  t.is(searchName('CORP\\jdoe'), 'jdoe');
  t.is(searchName('jdoe@corp.test'), 'jdoe@corp.test');
  t.is(searchName('trailing\\'), 'trailing\\');
  const directory = createLdapDirectory(config());
  t.like(await directory.authenticate('CORP\\jdoe', 'Correct horse 1'), { ok: true, user: { sAMAccountName: 'jdoe', login: 'CORP\\jdoe' } });
  await directory.close();
});

test.serial('the admit hook sees the entry the search found before the password is tried, and may refuse without a bind', async (t) => {
  const directory = createLdapDirectory(config());
  const jdoeDn = `cn=jdoe,ou=people,${ldap.baseDn}`;
  const start = bindAttempts(await ldap.readLog(), jdoeDn);
  const seen: unknown[] = [];
  const admitAll = { admit: async (entry: unknown) => (seen.push(entry), true) };
  t.like(await directory.authenticate('JDOE@corp.test', 'Correct horse 1', admitAll), { ok: true });
  t.like(await directory.authenticate('jdoe', 'wrong one', admitAll), { ok: false, reason: 'invalid_credentials' });
  t.deepEqual(seen, Array(2).fill({ dn: `cn=jdoe,ou=people,${ldap.baseDn}`, objectGuid: guidToString(jdoeGuid) }), 'every spelling: the same entry');
  t.true(await logShows((log) => bindAttempts(log, jdoeDn) === start + 2), 'both attempts bound as jdoe');
  const before = await ldap.readLog();
  t.deepEqual(await directory.authenticate('jdoe', 'Correct horse 1', { admit: async () => false }), { ok: false, reason: 'refused' });
  t.like(await directory.authenticate('nobody-here', 'Correct horse 1', { admit: async () => t.fail('no entry, no hook') as never }), { ok: false, reason: 'invalid_credentials' });
  // A real attempt as the marker: once its bind is logged, a bind of the refused one would be too.
  t.like(await directory.authenticate('jdoe', 'Correct horse 1'), { ok: true });
  t.true(await logShows((log) => bindAttempts(log, jdoeDn) > bindAttempts(before, jdoeDn)));
  t.is(bindAttempts(await ldap.readLog(), jdoeDn), bindAttempts(before, jdoeDn) + 1, 'a refused attempt never binds as the user');
  await t.throwsAsync(directory.authenticate('jdoe', 'Correct horse 1', { admit: async () => { throw new Error('limiter down'); } }), { message: 'limiter down' }, "the hook's failure is the caller's");
  await directory.close();
});

const refusals: Array<[string, string, string]> = [
  ['wrong password', 'jdoe', 'Correct horse 2'],
  ['password of another user', 'jdoe', 'Battery staple 2'],
  ['unknown user', 'nobody', 'Correct horse 1'],
  ['user outside the search base (ou=contractors)', 'ctr', 'Contract pw 4'],
  ['outside the search base, by UPN', 'ctr@corp.test', 'Contract pw 4'],
  ['disabled account (userAccountControl 514) with its right password', 'gone', 'Still valid 3'],
  ['filter injection: wildcard', '*', 'Correct horse 1'],
  ['filter injection: prefix wildcard', 'jd*', 'Correct horse 1'],
  ['filter injection: closing parenthesis', 'admin)(|(uid=*', 'Correct horse 1'],
  ['filter injection: or-branch', 'x)(sAMAccountName=jdoe', 'Correct horse 1'],
  ['filter injection: NUL byte', 'jdoe\u0000', 'Correct horse 1'],
];

for (const [title, login, password] of refusals) {
  test(`refused with the generic invalid_credentials: ${title}`, async (t) => {
    const directory = createLdapDirectory(config());
    t.deepEqual(await directory.authenticate(login, password), { ok: false, reason: 'invalid_credentials' });
    await directory.close();
  });
}

test('a wildcard login cannot match the only user of a base, even with that user\'s password', async (t) => {
  // ou=contractors holds exactly one user: an unescaped `*` would find and bind as them.
  const directory = createLdapDirectory(config({ searchBase: `ou=contractors,${ldap.baseDn}` }));
  t.like(await directory.authenticate('ctr', 'Contract pw 4'), { ok: true, user: { email: 'contractor@corp.test' } });
  t.deepEqual(await directory.authenticate('*', 'Contract pw 4'), { ok: false, reason: 'invalid_credentials' });
  t.deepEqual(await directory.authenticate('c*', 'Contract pw 4'), { ok: false, reason: 'invalid_credentials' });
  await directory.close();
});

test('the login is escaped per RFC 4515 before it reaches the filter', (t) => {
  t.is(escapeFilterValue('admin)(|(uid=*'), 'admin\\29\\28|\\28uid=\\2a');
  t.is(escapeFilterValue('CORP\\jdoe'), 'CORP\\5cjdoe');
  t.is(escapeFilterValue('a\u0000b'), 'a\\00b');
  t.is(escapeFilterValue('jane.doe@corp.test'), 'jane.doe@corp.test');
  t.is(
    buildSearchFilter('(|(sAMAccountName={{login}})(userPrincipalName={{login}}))', '*$&'),
    '(|(sAMAccountName=\\2a$&)(userPrincipalName=\\2a$&))',
  );
});

test('concurrent sign-ins each get their own answer', async (t) => {
  const directory = createLdapDirectory(config());
  const attempts = [
    directory.authenticate('jdoe', 'Correct horse 1'),
    directory.authenticate('rroe', 'Battery staple 2'),
    directory.authenticate('jdoe', 'wrong'),
    directory.authenticate('rroe@corp.test', 'Battery staple 2'),
    directory.authenticate('richard@corp.test', 'Correct horse 1'),
  ];
  const results = await Promise.all(attempts);
  t.deepEqual(
    results.map((r) => (r.ok ? r.user.sAMAccountName : r.reason)),
    ['jdoe', 'rroe', 'invalid_credentials', 'invalid_credentials', 'invalid_credentials'],
  );
  await directory.close();
});

test('a rejected service account bind is reported as unavailable, not as the user\'s fault', async (t) => {
  const directory = createLdapDirectory(config({ bindCredentials: 'not-the-service-password' }));
  t.deepEqual(await directory.authenticate('jdoe', 'Correct horse 1'), { ok: false, reason: 'unavailable' });
  await directory.close();
});

test('a stopped directory answers unavailable within the time bound', async (t) => {
  const own = await startLdapServer();
  await own.addUser({ sAMAccountName: 'tmp', userPrincipalName: 'tmp@corp.test', mail: 'tmp@corp.test', displayName: 'Tmp', password: 'Tmp pw 5' });
  const directory = createLdapDirectory(config({ url: own.url, bindCredentials: own.adminPassword }));
  t.like(await directory.authenticate('tmp', 'Tmp pw 5'), { ok: true });
  await own.stop();
  const started = Date.now();
  t.deepEqual(await directory.authenticate('tmp', 'Tmp pw 5'), { ok: false, reason: 'unavailable' });
  const elapsed = Date.now() - started;
  t.true(elapsed < ANSWER_BOUND_MS, `answered in ${elapsed} ms`);
  await directory.close();
});

test('a directory that accepts connections but never answers gives unavailable within the time bound', async (t) => {
  const sockets = new Set<Socket>();
  const silent: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const address = silent.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const directory = createLdapDirectory(config({ url: `ldap://127.0.0.1:${port}` }));
  try {
    const started = Date.now();
    t.deepEqual(await directory.authenticate('jdoe', 'Correct horse 1'), { ok: false, reason: 'unavailable' });
    const elapsed = Date.now() - started;
    t.true(elapsed < ANSWER_BOUND_MS, `answered in ${elapsed} ms`);
    t.true(sockets.size > 0, 'the adapter did reach the silent server');
  } finally {
    await directory.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test('a closed directory refuses further work as unavailable', async (t) => {
  const directory = createLdapDirectory(config());
  await directory.close();
  t.deepEqual(await directory.authenticate('jdoe', 'Correct horse 1'), { ok: false, reason: 'unavailable' });
});

test('configuration mistakes stop construction with a named code', (t) => {
  t.throws(() => createLdapDirectory(config({ url: 'http://dc1' })), { message: /directory_config_invalid: url/ });
  t.throws(() => createLdapDirectory(config({ searchFilter: '(uid=admin)' })), { message: /directory_config_invalid: searchFilter/ });
  t.throws(() => createLdapDirectory(config({ searchFilter: '(uid={{login}}' })), { message: /directory_config_invalid: searchFilter is not a valid/ });
  t.throws(() => createLdapDirectory(config({ timeLimitMs: 0 })), { message: /directory_config_invalid: timeLimitMs/ });
});

test('the service credentials never reach the logger', async (t) => {
  const lines: string[] = [];
  const logger = {
    warn: (obj: object, msg?: string) => lines.push(JSON.stringify(obj) + (msg ?? '')),
    error: (obj: object, msg?: string) => lines.push(JSON.stringify(obj) + (msg ?? '')),
  };
  const secret = 'Service-Secret-xyz';
  const directory = createLdapDirectory(config({ bindCredentials: secret }), logger);
  await directory.authenticate('jdoe', 'User-Secret-abc');
  await directory.close();
  const down = createLdapDirectory(config({ url: 'ldap://127.0.0.1:1', bindCredentials: secret }), logger);
  await down.authenticate('jdoe', 'User-Secret-abc');
  await down.close();
  t.true(lines.length >= 2, 'failures were logged');
  t.false(lines.some((line) => line.includes(secret) || line.includes('User-Secret-abc')));
});
