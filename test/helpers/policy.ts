/**
 * Test shortcuts for arranging policy state directly in the store (the admin API has its
 * own tests); every write is followed by `policy.changed()` like an admin write.
 */
import { DEFAULT_POLICY, type Company, type Policy, type Service } from '../../policies/index.ts';
import type { Gateway } from '../../gateway/app.ts';

type PolicyPatch = Partial<Omit<Policy, 'version' | 'anyone' | 'portal' | 'activeDirectory'>> & {
  anyone?: Partial<Policy['anyone']>;
  portal?: Partial<Policy['portal']>;
  activeDirectory?: Partial<Policy['activeDirectory']>;
};

export async function setPolicy(gw: Gateway, patch: PolicyPatch): Promise<Policy> {
  const current = (await gw.context.store.policy.get()) ?? DEFAULT_POLICY;
  const { version, ...base } = current;
  const next = {
    ...base,
    ...patch,
    anyone: { ...base.anyone, ...patch.anyone },
    portal: { ...base.portal, ...patch.portal },
    activeDirectory: { ...base.activeDirectory, ...patch.activeDirectory },
  };
  const saved = await gw.context.store.policy.save(next, version);
  await gw.context.policy.changed();
  return saved;
}

export async function addService(gw: Gateway, service: Service): Promise<void> {
  await gw.context.store.services.create(service);
  await gw.context.policy.changed();
}

export async function addCompany(gw: Gateway, company: Partial<Company> & Pick<Company, 'id' | 'name' | 'acceptedDomains'>): Promise<void> {
  await gw.context.store.companies.create({
    allowSubdomains: true,
    selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true },
    services: [],
    ...company,
  });
  await gw.context.policy.changed();
}
