/**
 * The bootstrap admin account: from ADMIN_EMAIL/ADMIN_PASSWORD, or generated and printed
 * once. It is created when no account has that address, and an existing account is
 * never changed: a restart must not undo the admin's password change, re-enable an admin
 * someone disabled, or give back a role someone removed. An existing account with that
 * address but without the admin role stops the start with one clear line: promoting a
 * customer's account because of an environment variable would be a silent escalation
 * (anyone who signed up with that address first would become an admin).
 *
 *   const admin = await ensureBootstrapAdmin(config, store, hasher); // { email, generatedPassword, created }
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { canonicalizeEmail } from '../../policies/index.ts';
import { StoreConflictError, type Customer, type Store } from '../../adapters/store.ts';
import type { PasswordHasher } from './passwords.ts';
import type { Config } from './config.ts';
import { ConfigError } from './config.ts';

export interface BootstrapAdmin {
  email: string;
  /** Only when generated in this start (print once). */
  generatedPassword: string | null;
  created: boolean;
}

const GENERATED_EMAIL = 'admin@gatehouse.localhost';

/** The start stops when the address belongs to an account that is not an admin. */
function refuseUnlessAdmin(existing: Customer, variable: string): void {
  if (existing.roles.includes('admin')) return;
  throw new ConfigError([
    `${variable} ${existing.email} belongs to an existing account without the admin role; it is not promoted at start. ` +
      'Grant the admin role from the console or the admin API, or choose another address.',
  ]);
}

export async function ensureBootstrapAdmin(config: Config, store: Store, hasher: PasswordHasher): Promise<BootstrapAdmin> {
  let email: string;
  let password: string;
  let generated = false;
  if (config.ADMIN_EMAIL && config.ADMIN_PASSWORD) {
    const canonical = canonicalizeEmail(config.ADMIN_EMAIL);
    if (!canonical.ok) throw new ConfigError([`ADMIN_EMAIL is not a valid email address (${canonical.detail})`]);
    email = canonical.email;
    password = config.ADMIN_PASSWORD;
  } else {
    email = GENERATED_EMAIL;
    password = randomBytes(15).toString('base64url');
    generated = true;
  }
  const variable = generated ? 'the generated admin address' : 'ADMIN_EMAIL';
  const existing = await store.customers.findByEmail(email);
  if (existing) {
    // Whatever it is now (password changed, disabled, renamed), it stays as it is.
    refuseUnlessAdmin(existing, variable);
    return { email, generatedPassword: null, created: false };
  }
  try {
    await store.customers.create({
      id: randomUUID(),
      email,
      emailVerified: true,
      name: 'Gatehouse admin',
      passwordHash: await hasher.hash(password),
      status: 'active',
      roles: ['admin'],
      companyId: null,
      services: [],
      portalAccess: true,
      identities: [],
      createdVia: 'bootstrap',
    });
  } catch (err) {
    if (!(err instanceof StoreConflictError)) throw err;
    // Another process (or a sign-up) took the address between the read and the write.
    const winner = await store.customers.findByEmail(email);
    if (winner) refuseUnlessAdmin(winner, variable);
    return { email, generatedPassword: null, created: false };
  }
  return { email, generatedPassword: generated ? password : null, created: true };
}
