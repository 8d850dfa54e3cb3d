/**
 * Public API of the policy engine (pure, no I/O). The gateway and the adapters
 * import from here (adapters: types only).
 */
export * from './types.ts';
export { canonicalizeEmail, canonicalizeDomain, addressWithoutTag } from './email.ts';
export type { EmailResult, DomainResult, DomainOptions } from './email.ts';
export { labelSuffixes, domainMatches } from './match.ts';
export { parsePolicy, parseCompany, parseService, parseDenylistEntries, PolicySchema, CompanySchema, ServiceSchema } from './schema.ts';
export { issuesFromZod, prefixIssues } from './issues.ts';
export { checkConfiguration } from './configuration.ts';
export type { Configuration, ConfigurationReport } from './configuration.ts';
export { compileSnapshot, snapshotLists, snapshotFromLists, adoptCopiedFilter, addCopiedDenylist } from './snapshot.ts';
export type { Snapshot, SnapshotInput, SnapshotLists, SkippedEntry } from './snapshot.ts';
export { applyDelta, deltaSize, parseDelta } from './delta.ts';
export type { PolicyDelta } from './delta.ts';
export { evaluate, companyForDomain } from './evaluate.ts';
export { applyPlugins } from './plugins.ts';
export { policyImpact } from './impact.ts';
export type { PolicyImpact, ImpactBucket, ImpactExample, RecordedAttempt, DecisionSummary } from './impact.ts';
export type { ApplyPluginsOptions } from './plugins.ts';
export { canSignIn, serviceAccessVerdict, portalSignupOpen, portalSignupOpenFor, sharingSearches, isShareCandidate, directorySignInAllowed, sourceSignInAllowed, adConnectorLoginUrl } from './access.ts';
export type { AccountState, ServiceRefusal, ServiceVerdict, SharingSearches } from './access.ts';
export { admission, awaitsProof } from './admission.ts';
export type { Admission, Hold } from './admission.ts';
export { resolveIdentity, pendingHolds, isPrivileged, EXTERNAL_SOURCES } from './identity.ts';
export type { ExternalSource, IdentityInput, IdentityResolution, IdentityKey, AccountFacts, LinkProof, IdentityRefusal, ProofOffer } from './identity.ts';
export { proveAddress, directoryDomains } from './sources.ts';
export type { SourceClaims, AddressProof } from './sources.ts';
