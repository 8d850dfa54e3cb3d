/**
 * Password hashing: argon2id through @node-rs/argon2 (native, no install script).
 * Cost from config; the defaults are OWASP's minimum (19 MiB, t=2, p=1).
 *
 *   const hasher = createPasswordHasher({ memoryKiB: 19456, timeCost: 2, parallelism: 1 });
 *   const phc = await hasher.hash('correct horse'); await hasher.verify(phc, 'correct horse');
 */
import { hash, verify } from '@node-rs/argon2';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password or a malformed hash; never throws for bad input. */
  verify(phc: string, password: string): Promise<boolean>;
  /**
   * Burns the same time as a real verify: used when the account does not exist (or has
   * no password) so response timing does not reveal which emails are registered.
   */
  verifyDummy(password: string): Promise<false>;
}

/** Argon2id's value in @node-rs/argon2's (const enum) Algorithm. */
const ARGON2ID = 2;

export function createPasswordHasher(cost: { memoryKiB: number; timeCost: number; parallelism: number }): PasswordHasher {
  const options = { algorithm: ARGON2ID, memoryCost: cost.memoryKiB, timeCost: cost.timeCost, parallelism: cost.parallelism };
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => hash(password, options),
    async verify(phc, password) {
      try {
        return await verify(phc, password);
      } catch {
        return false;
      }
    },
    async verifyDummy(password) {
      dummy ??= hash('gatehouse-timing-equaliser', options);
      await verify(await dummy, password).catch(() => false);
      return false;
    },
  };
}

/**
 * The one password check for an account that may not exist: verifies against the
 * account's hash, or burns the same time on the dummy hash when there is no account or
 * no password, so the answer's timing never tells whether the address is registered
 * (login, and linking an external identity to an existing account).
 *
 *   const ok = await passwordMatches(hasher, customer?.passwordHash, form.password);
 */
export function passwordMatches(hasher: Pick<PasswordHasher, 'verify' | 'verifyDummy'>, phc: string | null | undefined, password: string): Promise<boolean> {
  return phc ? hasher.verify(phc, password) : hasher.verifyDummy(password);
}
