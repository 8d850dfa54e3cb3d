/**
 * gateway/oidc/: Gatehouse as an OpenID Provider. provider.ts is the one factory of the
 * oidc-provider instance (every override says why); accounts.ts turns a customer into
 * claims; clients.ts loads the static clients; account-sessions.ts indexes an account's
 * sessions and grants so they can all be ended. The interaction side: interaction.ts
 * loads the interaction a page belongs to (one loader for every interaction route) and
 * ends it; interactions.ts serves the login and consent pages; second-factor-step.ts the
 * second step of admins and agents (TOTP, passkey, recovery code); service-prompt.ts and
 * service-interaction.ts are the per-service access prompt; flow-state.ts keeps any
 * path's state between two requests server-side (schema-checked, expiring, only an
 * opaque id in the browser). The Keycloak layout and logout: layouts.ts (paths), realm.ts
 * (mounts /realms/{realm}/...), resources.ts (resource servers, RFC 9068 tokens), cors.ts
 * (web origins), logout.ts (RP-initiated logout on a valid id_token_hint), backchannel.ts
 * (durable Back-Channel Logout), refresh-envelope.ts (refresh tokens keycloak-js can read),
 * form.ts. Modules here may import policies/, adapters/ store and
 * adapter types, gateway/runtime/ and gateway/http/; never gateway/signup/,
 * gateway/admin/ or gateway/portal/, which build on this folder.
 *
 *   const provider = createProvider({ issuer, adapter, clients, findAccount, ... });
 *   const interaction = await loadInteraction(provider, c, { prompt: 'login' });
 */
export { createProvider, SCOPES, webOriginsOf, type GatehouseClientMetadata } from './provider.ts';
export { loadResourceServers } from './resources.ts';
export { KEYCLOAK_ROUTES, realmIssuer, realmPath } from './layouts.ts';
export { createBackchannel } from './backchannel.ts';
export { endSessionWithHint } from './logout.ts';
export { keycloakRealms, type RealmMount } from './realm.ts';
export { createFindAccount, customerClaims, CLAIMS } from './accounts.ts';
export { createClientRegistry, loadClientSetup, reservedClientIds, type ClientRegistry } from './clients.ts';
export { interactionRoutes, GENERIC_LOGIN_FAILURE, type LoginOption } from './interactions.ts';
export { serviceInteractionRoutes } from './service-interaction.ts';
export { secondFactorRoutes, SECOND_FACTOR_AMR } from './second-factor-step.ts';
export { trackAccountSessions } from './account-sessions.ts';
export { loadInteraction, finishLogin, abortInteraction } from './interaction.ts';
export { defineFlow, flowCookie, type Flow } from './flow-state.ts';
