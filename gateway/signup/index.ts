/**
 * gateway/signup/: every way of becoming a customer, and the one service they all go
 * through. registration.ts is THE registration service (pre-write: the policy decides
 * and admission holds an unproven address; write: one atomic account write; post-write:
 * audit and the verification / invite mail of mail.ts, with the link tokens of
 * link-tokens.ts). One module or folder per path: portal/ (the sign-up form and its
 * verification link, with return-to.ts for the way back to the application), google/
 * and active-directory/ (each a source of external identities), external/ (THE
 * identity-resolution entry point of every external source and the proof a link to an
 * existing account needs), issuers.ts (each source's identity key, for the admin API's
 * console links), pending.ts (how long a pending sign-up holds its address),
 * email.ts (inbound email, which the visitor API in visitor.ts and portal sharing
 * reuse; intake-guard.ts is the gate both intakes pass first: authenticated senders,
 * never our own addresses, a limit per sender domain), one-time-links.ts (invite and password reset pages) and password-rules.ts.
 * Modules here may import policies/, adapters/ (the store and directory ports),
 * gateway/runtime/, gateway/http/ and gateway/oidc/ (interactions, flow state); they
 * never import gateway/admin/, gateway/portal/ or gateway/app.ts. Outside this folder,
 * gateway/app.ts wires what is exported here; the admin API and portal sharing use the
 * registration service through the context, the AD secret and registerEmailSender.
 *
 *   const registration = createRegistration({ store, policy, logger, mail: createSignupMail({ store, views, issuer, sendMail }) });
 *   routes: signupPortalRoutes(ctx), googleSignupRoutes(ctx), signupAdRoutes(ctx, directory), ...
 */
export { createRegistration, type Registration, type RegistrationRequest, type RegistrationResult } from './registration.ts';
export { createSignupMail, type SignupMail } from './mail.ts';
export { portalRegisterLink, signupPortalRoutes } from './portal/index.ts';
export { serviceOfClient } from './portal/form.ts';
export { googleLoginOption, googleSignupRoutes } from './google/index.ts';
export { linkRoutes as identityLinkRoutes } from './external/index.ts';
export { identityKeyFor } from './issuers.ts';
export { adLoginOptions, directoryFromConfig, signupAdRoutes } from './active-directory/index.ts';
export { emailSignupRoutes, registerEmailSender } from './email.ts';
export { guardIntakeSender, recordIntakeRejection } from './intake-guard.ts';
export { visitorRoutes } from './visitor.ts';
export { setPasswordRoutes } from './one-time-links.ts';
