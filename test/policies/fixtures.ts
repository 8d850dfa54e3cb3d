/**
 * Builders for policy-engine tests: a company, a policy, a service list and a
 * compiled snapshot with only the fields a test cares about spelled out.
 */
import { compileSnapshot } from '../../policies/snapshot.ts';
import { DEFAULT_POLICY } from '../../policies/types.ts';
import type { Snapshot } from '../../policies/snapshot.ts';
import type { Company, DenylistEntry, Policy, SelfRegistrationMode, Service } from '../../policies/types.ts';

export type CompanyOverrides = Partial<Omit<Company, 'selfRegistration'>> & { selfRegistration?: Partial<Company['selfRegistration']> };

export function company(id: string, domains: string[], overrides: CompanyOverrides = {}): Company {
  const { selfRegistration, ...rest } = overrides;
  return {
    id,
    name: id,
    acceptedDomains: domains,
    allowSubdomains: true,
    services: [],
    ...rest,
    selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true, ...selfRegistration },
  };
}

export function policy(mode: SelfRegistrationMode, anyone: Partial<Policy['anyone']> = {}): Policy {
  return { ...structuredClone(DEFAULT_POLICY), selfRegistration: mode, anyone: { ...DEFAULT_POLICY.anyone, ...anyone } };
}

export function services(...ids: string[]): Service[] {
  return ids.map((id) => ({ id, name: id, requestAccess: 'granted' as const }));
}

export function denylist(...values: string[]): Array<Pick<DenylistEntry, 'value' | 'kind'>> {
  return values.map((value) => ({ value, kind: value.includes('@') ? ('email' as const) : ('domain' as const) }));
}

export interface World {
  policy?: Policy;
  companies?: Company[];
  services?: Service[];
  denylist?: Array<Pick<DenylistEntry, 'value' | 'kind'>>;
}

export function snapshotOf(world: World): Snapshot {
  return compileSnapshot({
    policy: world.policy ?? policy('off'),
    companies: world.companies ?? [],
    services: world.services ?? [],
    denylist: world.denylist ?? [],
  });
}
