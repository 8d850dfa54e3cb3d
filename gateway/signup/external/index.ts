/**
 * Every external identity (Google, the AD form, the AD connector, any later source) ends
 * here: person.ts (the person a source vouches for, as data), resolve.ts (THE
 * identity-resolution entry point, applying policies/identity.ts: sign in by the
 * source's stable key, link with proof, register through the registration service,
 * take over a pending sign-up, or refuse), link.ts (the proof in the same browser: the
 * account's password or a single-use mailed link) and pages.ts (refusal and sign-in).
 * Modules here may import policies/, adapters/ store types, runtime/, http/, oidc/ and
 * the sign-up modules beside this folder (mail, link tokens, pending); the source folders
 * (google/, active-directory/) import this one, never the other way round.
 *
 *   const outcome = await resolveExternal(ctx, person, { proof: 'none' }, { ip, requestId });
 *   if (outcome.kind === 'prove') return askForProof(ctx, c, uid, person, outcome);
 *   if (outcome.kind === 'refuse') return refuseExternal(ctx, c, person.source, outcome.reason, uid);
 *   await signInExternal(ctx, c, outcome.customer, person.source, ['google'], outcome.how);
 */
export { ExternalPerson, amrOf, labelOf, methodOf } from './person.ts';
export { resolveExternal, type ExternalOutcome, type ExternalRefusal, type GivenProof } from './resolve.ts';
export { askForProof, linkRoutes, GENERIC_LINK_FAILURE, LINK_FLOW_TTL_MS, MAILED_LINK_TTL_MS } from './link.ts';
export { refuseExternal, signInExternal } from './pages.ts';
