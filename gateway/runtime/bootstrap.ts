/**
 * The bootstrap admin account: from ADMIN_EMAIL/ADMIN_PASSWORD, or generated and printed
 * once (only when no admin exists yet, so a durable store never gets a second one).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { canonicalizeEmail } from '../../policies/index.ts';
import { StoreConflictError, type Store } from '../../adapters/store.ts';
import type { PasswordHasher } from './passwords.ts';
import type { Config } from './config.ts';
import { ConfigError } from './config.ts';

export interface BootstrapAdmin {
  email: string;
  /** Only when generated in this start (print once). */
  generatedPassword: string | null;
  created: boolean;
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
    email = 'admin@gatehouse.localhost';
    password = randomBytes(15).toString('base64url');
    generated = true;
  }
  const existing = await store.customers.findByEmail(email);
  if (existing) {
    if (!existing.roles.includes('admin')) await store.customers.update(existing.id, { roles: [...existing.roles, 'admin'] });
    if (!generated) {
      // An explicit ADMIN_PASSWORD is the source of truth for the bootstrap admin.
      const same = existing.passwordHash ? await hasher.verify(existing.passwordHash, password) : false;
      if (!same) await store.customers.update(existing.id, { passwordHash: await hasher.hash(password), status: 'active' });
    }
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
    if (err instanceof StoreConflictError) return { email, generatedPassword: null, created: false };
    throw err;
  }
  return { email, generatedPassword: generated ? password : null, created: true };
}
