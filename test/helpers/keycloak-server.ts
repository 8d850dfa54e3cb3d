/**
 * A real Keycloak (the Quarkus distribution that scripts/ensure-keycloak.sh caches) for the
 * brokering test: copied into a temp home (so runs never share its database), started
 * pre-built (`kc.sh start --optimized`, plain HTTP, the dev-file database the provisioning
 * script built it for: what `start-dev` does minus minutes of re-augmentation) on a free
 * loopback port, one realm
 * imported from a JSON file, a bootstrap admin for the admin REST API, and a truststore
 * holding the test certificate so it can talk to a gateway behind TLS.
 *
 *   const kc = await startKeycloak({ realmJson, trustPem });
 *   kc.url  // http://127.0.0.1:40123
 *   await kc.adminToken(); ...; await kc.stop();
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KEYCLOAK_ADMIN = { username: 'kc-admin', password: 'kc-admin-password-0123456789' };

export interface KeycloakServer {
  url: string;
  version: string;
  /** A master-realm admin access token (admin-cli, password grant of the bootstrap admin). */
  adminToken(): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

export async function startKeycloak(options: { realmJson: string; trustPem: string; port?: number; startTimeoutMs?: number }): Promise<KeycloakServer> {
  const [home, javaHome] = execFileSync('bash', [join(ROOT, 'scripts/ensure-keycloak.sh')], { encoding: 'utf8' }).trim().split('\n');
  if (!home || !javaHome) throw new Error('scripts/ensure-keycloak.sh printed no Keycloak home and JAVA_HOME');
  const dir = mkdtempSync(join(tmpdir(), 'gh-keycloak-'));
  execFileSync('cp', ['-a', home, join(dir, 'kc')]);
  mkdirSync(join(dir, 'kc', 'data', 'import'), { recursive: true });
  writeFileSync(join(dir, 'kc', 'data', 'import', 'realm.json'), options.realmJson);
  writeFileSync(join(dir, 'trust.pem'), options.trustPem);
  const [port, managementPort] = [options.port ?? (await freePort()), await freePort()];
  let output = '';
  const child = spawn(join(dir, 'kc', 'bin', 'kc.sh'), [
    'start', '--optimized', '--http-enabled=true', '--hostname-strict=false',
    '--http-host=127.0.0.1', `--http-port=${port}`, `--http-management-port=${managementPort}`,
    '--import-realm', `--truststore-paths=${join(dir, 'trust.pem')}`,
  ], {
    env: {
      ...process.env,
      JAVA_HOME: javaHome,
      KC_BOOTSTRAP_ADMIN_USERNAME: KEYCLOAK_ADMIN.username,
      KC_BOOTSTRAP_ADMIN_PASSWORD: KEYCLOAK_ADMIN.password,
      JAVA_OPTS_APPEND: '-Xms64m -Xmx768m',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-20_000); });
  child.stderr.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-20_000); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;

  const stop = async () => {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 300_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Keycloak exited with ${child.exitCode}:\n${output.slice(-4000)}`);
    const ready = await fetch(`${url}/realms/master`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Keycloak did not answer within the start timeout:\n${output.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }

  return {
    url,
    version: home.replace(/.*keycloak-/, ''),
    log: () => output,
    async adminToken() {
      const res = await fetch(`${url}/realms/master/protocol/openid-connect/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', ...KEYCLOAK_ADMIN }).toString(),
      });
      if (!res.ok) throw new Error(`Keycloak admin token: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { access_token: string }).access_token;
    },
    stop,
  };
}
