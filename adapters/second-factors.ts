/**
 * The second-factor store (store.ts `SecondFactorStore`) written once over a plain
 * document-per-customer read/write, for every backend: memory, MongoDB, and any later one.
 *
 *   factors: secondFactorStore({ read: (id) => ..., write: (doc) => ..., remove: (id) => ... })
 *
 * Each method reads the customer's document, changes it and writes it back. Two changes
 * of one admin's factors at the same instant can lose one (as updates on FerretDB can);
 * nothing that decides a race relies on it: a replayed code is refused by a unique
 * `factor-use` token (gateway/runtime/second-factor.ts), not here.
 */
import type { PasskeyCredential, SecondFactors, SecondFactorStore } from './store.ts';

export interface FactorDocuments {
  read(customerId: string): Promise<SecondFactors | null>;
  write(doc: SecondFactors): Promise<void>;
  remove(customerId: string): Promise<void>;
}

const empty = (customerId: string): SecondFactors => ({ customerId, totp: null, pendingTotp: null, passkeys: [], recoveryCodes: [], updatedAt: new Date() });

export function secondFactorStore(io: FactorDocuments): SecondFactorStore {
  /** Applies `change` to the document (a fresh one when absent); writes only when it returns true. */
  async function change(customerId: string, apply: (doc: SecondFactors) => boolean): Promise<boolean> {
    const doc = (await io.read(customerId)) ?? empty(customerId);
    if (!apply(doc)) return false;
    doc.updatedAt = new Date();
    await io.write(doc);
    return true;
  }
  return {
    get: (customerId) => io.read(customerId),
    async setPendingTotp(customerId, pending) {
      await change(customerId, (doc) => ((doc.pendingTotp = { ...pending }), true));
    },
    confirmTotp: (customerId, lastStep, now) =>
      change(customerId, (doc) => {
        if (!doc.pendingTotp || doc.pendingTotp.expiresAt <= now) return false;
        doc.totp = { secret: doc.pendingTotp.secret, lastStep, confirmedAt: now };
        doc.pendingTotp = null;
        return true;
      }),
    removeTotp: (customerId) => change(customerId, (doc) => doc.totp !== null && ((doc.totp = null), true)),
    recordTotpStep: (customerId, step) =>
      change(customerId, (doc) => {
        if (!doc.totp || step <= doc.totp.lastStep) return false;
        doc.totp.lastStep = step;
        return true;
      }),
    async addPasskey(customerId, passkey: PasskeyCredential) {
      await change(customerId, (doc) => ((doc.passkeys = [...doc.passkeys.filter((p) => p.id !== passkey.id), { ...passkey }]), true));
    },
    removePasskey: (customerId, id) =>
      change(customerId, (doc) => {
        const before = doc.passkeys.length;
        doc.passkeys = doc.passkeys.filter((p) => p.id !== id);
        return doc.passkeys.length < before;
      }),
    recordPasskeyUse: (customerId, id, counter, at) =>
      change(customerId, (doc) => {
        const passkey = doc.passkeys.find((p) => p.id === id);
        if (!passkey) return false;
        passkey.counter = counter;
        passkey.lastUsedAt = at;
        return true;
      }),
    async setRecoveryCodes(customerId, hashes) {
      await change(customerId, (doc) => ((doc.recoveryCodes = [...hashes]), true));
    },
    removeRecoveryCode: (customerId, hash) =>
      change(customerId, (doc) => {
        const index = doc.recoveryCodes.indexOf(hash);
        if (index < 0) return false;
        doc.recoveryCodes.splice(index, 1);
        return true;
      }),
    delete: (customerId) => io.remove(customerId),
  };
}
