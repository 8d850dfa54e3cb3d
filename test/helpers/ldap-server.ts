/**
 * A real OpenLDAP server for the directory tests, dressed up as a small Active Directory.
 *
 * `startLdapServer()` runs Debian's `slapd` from a fresh temp dir, unprivileged-style:
 * its own slapd.conf, its own mdb database for `dc=corp,dc=test`, a loopback URL on a
 * free port, never port 389, never /etc/ldap/slapd.d or the system instance. The
 * schemas are core/cosine/inetorgperson from /etc/ldap/schema plus the TEST-only schema
 * in `test/helpers/ldap/gatehouse-test-ad.schema` (sAMAccountName, userPrincipalName,
 * userAccountControl, objectGUID). `ou=people` and `ou=contractors` are seeded; `addUser`
 * adds a person with an {SSHA} password and a random objectGUID (as AD gives every
 * object one), unless told `objectGuid: null`. When slapd is missing or does not answer, the start
 * fails loudly with the tail of its log: a test that needs it must fail, never skip.
 *
 *   const ldap = await startLdapServer();
 *   const { dn, objectGuid } = await ldap.addUser({ sAMAccountName: 'jdoe', userPrincipalName: 'jdoe@corp.test',
 *     mail: 'jane@corp.test', displayName: 'Jane Doe', password: 's3cret' });
 *   ...
 *   await ldap.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

export interface LdapTestUser {
  sAMAccountName: string;
  userPrincipalName: string;
  mail: string;
  displayName: string;
  password: string;
  /** Sets userAccountControl to 514 (NORMAL_ACCOUNT | ACCOUNTDISABLE) instead of 512. */
  disabled?: boolean;
  /** Organisational unit under the base DN: 'people' (default) or 'contractors'. */
  ou?: string;
  /** The 16 raw bytes of objectGUID; default random; null for an entry without one. */
  objectGuid?: Buffer | null;
}

export interface LdapTestServer {
  url: string;
  port: number;
  baseDn: string;
  adminDn: string;
  adminPassword: string;
  /** `objectGuid` is the raw 16 bytes stored (null when the entry has none). */
  addUser(user: LdapTestUser): Promise<{ dn: string; objectGuid: Buffer | null }>;
  /** slapd's `stats` log so far (connections, BIND/SRCH operations; never passwords). */
  readLog(): Promise<string>;
  stop(): Promise<void>;
}

const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const LDAPADD = '/usr/bin/ldapadd';
const LDAPWHOAMI = '/usr/bin/ldapwhoami';
const SYSTEM_SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_PATH = '/usr/lib/ldap';
const TEST_SCHEMA = fileURLToPath(new URL('./ldap/gatehouse-test-ad.schema', import.meta.url));
const BASE_DN = 'dc=corp,dc=test';
const ADMIN_DN = `cn=admin,${BASE_DN}`;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** Starts a throwaway slapd on 127.0.0.1:<free port>. */
export async function startLdapServer(): Promise<LdapTestServer> {
  assertToolsPresent();
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-slapd-'));
  let child: ChildProcess | null = null;
  let exited: { code: number | null; signal: string | null } | null = null;
  // If the test process dies without calling stop(), take slapd and its files with it.
  const reap = () => {
    if (child && exited === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', reap);

  const adminPassword = randomBytes(12).toString('hex');
  const logFile = join(dir, 'slapd.log');
  const confFile = join(dir, 'slapd.conf');
  let url = '';
  let port = 0;
  let exitPromise: Promise<void> = Promise.resolve();
  try {
    port = await freePort();
    url = `ldap://127.0.0.1:${port}`;
    await mkdir(join(dir, 'db'));
    await writeFile(confFile, slapdConf(dir, adminPassword));
    await run(SLAPADD, ['-f', confFile, '-b', BASE_DN], seedLdif());

    const started = spawn(SLAPD, ['-h', `${url}/`, '-f', confFile, '-d', 'stats'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    started.stderr?.pipe(createWriteStream(logFile));
    exitPromise = new Promise<void>((resolve) => {
      started.once('exit', (code, signal) => {
        exited = { code, signal };
        resolve();
      });
    });
    await waitUntilBindable(url, adminPassword, () => exited);
  } catch (error) {
    process.off('exit', reap);
    const running = child as ChildProcess | null;
    running?.kill('SIGKILL');
    const tail = await logTail(logFile);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`ldap_test_server_start_failed: ${(error as Error).message}\n--- slapd log tail ---\n${tail}`);
  }

  const slapd: ChildProcess = child;
  let stopped = false;
  return {
    url,
    port,
    baseDn: BASE_DN,
    adminDn: ADMIN_DN,
    adminPassword,
    addUser: (user) => addUser(url, adminPassword, user),
    readLog: () => readFile(logFile, 'utf8'),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', reap);
      await stopChild(slapd, () => exited !== null, exitPromise);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function assertToolsPresent(): void {
  for (const tool of [SLAPD, SLAPADD, LDAPADD, LDAPWHOAMI, join(MODULE_PATH, 'back_mdb.la')]) {
    if (!existsSync(tool)) {
      throw new Error(`ldap_test_server_missing: ${tool} not found; install the Debian packages slapd and ldap-utils`);
    }
  }
}

function slapdConf(dir: string, adminPassword: string): string {
  const schema = (name: string) => `include ${join(SYSTEM_SCHEMA_DIR, name)}`;
  return [
    '# Generated by test/helpers/ldap-server.ts for one test run. Not a production config.',
    schema('core.schema'),
    schema('cosine.schema'),
    schema('inetorgperson.schema'),
    `include ${TEST_SCHEMA}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    `modulepath ${MODULE_PATH}`,
    'moduleload back_mdb',
    'password-hash {SSHA}',
    // Generous limits so a search never trips the server's defaults in tests.
    'sizelimit 500',
    '',
    'database mdb',
    `suffix "${BASE_DN}"`,
    `rootdn "${ADMIN_DN}"`,
    `rootpw ${ssha(adminPassword)}`,
    `directory ${join(dir, 'db')}`,
    'maxsize 16777216',
    'index objectClass eq',
    'access to attrs=userPassword by self write by anonymous auth by * none',
    'access to * by * read',
    '',
  ].join('\n');
}

function seedLdif(): string {
  return [
    `dn: ${BASE_DN}`,
    'objectClass: dcObject',
    'objectClass: organization',
    'dc: corp',
    'o: Corp Test',
    '',
    `dn: ou=people,${BASE_DN}`,
    'objectClass: organizationalUnit',
    'ou: people',
    '',
    `dn: ou=contractors,${BASE_DN}`,
    'objectClass: organizationalUnit',
    'ou: contractors',
    '',
  ].join('\n');
}

/** RFC 2307 {SSHA}: base64(sha1(password + salt) + salt). */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** LDIF values that are not "safe strings" (RFC 2849) are written base64 with `::`. */
function ldifLine(attribute: string, value: string): string {
  const safe = /^[\x01-\x09\x0b-\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b-\x0c\x0e-\x7f]*$/.test(value);
  return safe ? `${attribute}: ${value}` : `${attribute}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

/** Escapes an RDN value (RFC 4514). */
function escapeRdnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

async function addUser(url: string, adminPassword: string, user: LdapTestUser): Promise<{ dn: string; objectGuid: Buffer | null }> {
  const ou = user.ou ?? 'people';
  const dn = `cn=${escapeRdnValue(user.sAMAccountName)},ou=${escapeRdnValue(ou)},${BASE_DN}`;
  const surname = user.displayName.split(' ').at(-1) || user.sAMAccountName;
  const objectGuid = user.objectGuid === undefined ? randomBytes(16) : user.objectGuid;
  const ldif = [
    ldifLine('dn', dn),
    'objectClass: inetOrgPerson',
    'objectClass: gatehouseTestAdUser',
    ldifLine('cn', user.sAMAccountName),
    ldifLine('sn', surname),
    ldifLine('displayName', user.displayName),
    ldifLine('mail', user.mail),
    ldifLine('sAMAccountName', user.sAMAccountName),
    ldifLine('userPrincipalName', user.userPrincipalName),
    `userAccountControl: ${user.disabled ? 514 : 512}`,
    ...(objectGuid ? [`objectGUID:: ${objectGuid.toString('base64')}`] : []),
    ldifLine('userPassword', ssha(user.password)),
    '',
  ].join('\n');
  await run(LDAPADD, ['-x', '-H', url, '-D', ADMIN_DN, '-w', adminPassword], ldif);
  return { dn, objectGuid };
}

async function waitUntilBindable(
  url: string,
  adminPassword: string,
  exited: () => { code: number | null; signal: string | null } | null,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    const status = exited();
    if (status) throw new Error(`slapd exited early (code ${status.code}, signal ${status.signal})`);
    try {
      await run(LDAPWHOAMI, ['-x', '-H', url, '-D', ADMIN_DN, '-w', adminPassword, '-o', 'nettimeout=2']);
      return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`slapd did not answer a bind on ${url} within ${START_TIMEOUT_MS} ms (last error: ${lastError})`);
}

async function stopChild(child: ChildProcess, hasExited: () => boolean, exitPromise: Promise<void>): Promise<void> {
  if (hasExited()) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exitPromise;
  clearTimeout(timer);
}

async function logTail(logFile: string): Promise<string> {
  try {
    const text = await readFile(logFile, 'utf8');
    return text.split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Runs a tool to completion, feeding `input` on stdin; rejects with its stderr on a non-zero exit. */
async function run(command: string, args: string[], input?: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    // Tools that read no input (ldapwhoami) may exit before stdin is written: EPIPE then
    // is harmless, and the exit code below says how the tool fared.
    child.stdin.on('error', () => {});
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} exited with ${code}: ${stderr.trim() || stdout.trim()}`));
    });
    child.stdin.end(input ?? '');
  });
}
