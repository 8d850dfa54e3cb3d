/**
 * Per-service request access at sign-in (Jira's "who can send requests to this project").
 *
 * A client bound to a service (client metadata `service: '<id>'`) may only be used by
 * customers the service's `requestAccess` admits:
 *   granted            only customers whose `services` already include it
 *   anyone             any active customer with portal access; granted on first use
 *   existing-accounts  any active customer with portal access; granted on first use
 * Roles give no exemption: an admin or agent signing in to a service-bound client must
 * hold the service like anyone else (their console needs no service-bound client).
 *
 * It runs as an oidc-provider interaction-policy prompt (`service`) placed after `login`
 * and before `consent`, so every sign-in path (password, Google, Active Directory, sign-up
 * forms, an existing SSO session) passes through it. The provider factory is given the
 * store and the policy runtime the check reads.
 *
 * The rule itself is pure and lives in policies/access.ts (`serviceAccessVerdict`).
 *
 *   interactions.policy = policyWithServicePrompt({ store, policy });   // gateway/oidc/provider.ts
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { Store } from '../../adapters/store.ts';
import { serviceAccessVerdict, type ServiceVerdict } from '../../policies/index.ts';
import type { PolicyRuntime } from '../runtime/policy-runtime.ts';

export const SERVICE_PROMPT = 'service';

/** The service id a client is bound to, if any. */
export function boundService(client: unknown): string | null {
  const service = (client as { service?: unknown } | undefined)?.service;
  return typeof service === 'string' && service.length > 0 ? service : null;
}

export interface ServiceAccessDeps {
  store: Pick<Store, 'customers'>;
  policy: Pick<PolicyRuntime, 'current'>;
}

/** Loads customer and service and decides; shared by the check and the interaction page. */
export async function verdictFor(deps: ServiceAccessDeps, accountId: string | undefined, serviceId: string): Promise<ServiceVerdict> {
  const customer = accountId ? await deps.store.customers.get(accountId) : null;
  return serviceAccessVerdict(customer, deps.policy.current().servicesById.get(serviceId));
}

function needsServiceInteraction(deps: ServiceAccessDeps) {
  return async (ctx: KoaContextWithOIDC): Promise<boolean> => {
    const serviceId = boundService(ctx.oidc.client);
    if (!serviceId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    const accountId = ctx.oidc.session?.accountId;
    // No account yet: the login prompt (before this one) asks first.
    if (!accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    const verdict = await verdictFor(deps, accountId, serviceId);
    return verdict.kind === 'holds' ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
  };
}

/** The `service` prompt: not requestable by clients (only the policy raises it). */
export function servicePrompt(deps: ServiceAccessDeps): interactionPolicy.Prompt {
  return new interactionPolicy.Prompt(
    { name: SERVICE_PROMPT, requestable: false },
    (ctx) => ({ service: boundService(ctx.oidc.client) }),
    new interactionPolicy.Check('service_access', 'The account may not use this service yet', needsServiceInteraction(deps)),
  );
}

/** oidc-provider's default policy (login, consent) with `service` between them. */
export function policyWithServicePrompt(deps: ServiceAccessDeps): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  const consentAt = policy.findIndex((p) => p.name === 'consent');
  policy.add(servicePrompt(deps), consentAt === -1 ? policy.length : consentAt);
  return policy;
}
