/**
 * The plugin hook: deployers' own checks, run in order AFTER the built-in rules and
 * only on an `allow` decision. A plugin may deny (reason `plugin:<name>`) or add
 * services. Each call is bounded in time; a timeout, a throw/rejection or a
 * malformed verdict DENIES (fail closed). Plugins receive frozen copies (the
 * attempt carries the canonical address, never the raw input) so they cannot
 * change the decision except through their verdict. Once a plugin denies, later
 * plugins do not run.
 *
 * Limits: the bound covers asynchronous work only; a plugin that blocks the event
 * loop synchronously cannot be interrupted in-process. Loading plugin modules from
 * paths is the gateway's job.
 */
import type { Snapshot } from './snapshot.ts';
import type { Attempt, Decision, PluginVerdict, PolicyPlugin, TraceEntry } from './types.ts';

export interface ApplyPluginsOptions {
  /** Upper bound per plugin call, in milliseconds. */
  timeoutMs?: number;
  /** When given, added services that do not exist are not granted (noted in the trace). */
  snapshot?: Pick<Snapshot, 'servicesById'>;
}

type Outcome = { ok: true; verdict: PluginVerdict } | { ok: false; detail: string };

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/** What a plugin sees of the attempt: plain data, canonical address, frozen. */
function attemptView(attempt: Attempt, decision: Decision): Readonly<Attempt> {
  const view: Attempt = { method: attempt.method, email: decision.email, emailVerified: attempt.emailVerified === true };
  if (attempt.adminOverride !== undefined) view.adminOverride = attempt.adminOverride === true;
  if (typeof attempt.hostedDomain === 'string') view.hostedDomain = attempt.hostedDomain;
  if (typeof attempt.serviceId === 'string') view.serviceId = attempt.serviceId;
  return deepFreeze(view);
}

function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.slice(0, 200);
}

async function callBounded(plugin: PolicyPlugin, attempt: Readonly<Attempt>, decision: Readonly<Decision>, timeoutMs: number): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
  });
  const call = Promise.resolve()
    .then(() => plugin.check(attempt, decision))
    .then((verdict): Outcome => ({ ok: true, verdict }), (error: unknown): Outcome => ({ ok: false, detail: `threw: ${describeError(error)}` }));
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Null when the verdict is well formed, else why not. */
function verdictProblem(verdict: unknown): string | null {
  if (verdict === undefined || verdict === null) return null;
  if (typeof verdict !== 'object' || Array.isArray(verdict)) return 'verdict is not an object';
  const v = verdict as Record<string, unknown>;
  if (v.deny !== undefined && typeof v.deny !== 'boolean') return 'deny is not a boolean';
  if (v.note !== undefined && typeof v.note !== 'string') return 'note is not a string';
  if (v.addServices !== undefined && !(Array.isArray(v.addServices) && v.addServices.every((s) => typeof s === 'string'))) {
    return 'addServices is not an array of strings';
  }
  return null;
}

function denied(decision: Decision, name: string, trace: TraceEntry[]): Decision {
  const { companyId: _companyId, verificationPending: _pending, ...rest } = decision;
  return { ...rest, outcome: 'deny', reason: `plugin:${name}`, services: [], portalAccess: false, trace };
}

function addServices(current: string[], added: readonly string[], name: string, options: ApplyPluginsOptions, trace: TraceEntry[]): string[] {
  const services = [...current];
  for (const id of added) {
    if (services.includes(id)) continue;
    if (options.snapshot && !options.snapshot.servicesById.has(id)) {
      trace.push({ rule: `plugin:${name}`, result: 'info', detail: `service "${id}" does not exist; not granted` });
      continue;
    }
    services.push(id);
  }
  return services;
}

/**
 * Runs the plugins in order on an allowed decision and returns the final decision.
 *
 * @example const final = await applyPlugins(attempt, evaluate(attempt, snapshot), plugins, { timeoutMs: 200, snapshot });
 */
export async function applyPlugins(
  attempt: Attempt,
  decision: Decision,
  plugins: readonly PolicyPlugin[],
  options: ApplyPluginsOptions = {},
): Promise<Decision> {
  const timeoutMs = options.timeoutMs ?? 200;
  let current: Decision = { ...decision, services: [...decision.services], trace: [...decision.trace] };
  if (current.outcome !== 'allow') return current;
  for (const plugin of plugins) {
    const name = typeof plugin?.name === 'string' && plugin.name.length > 0 ? plugin.name : 'unnamed';
    const rule = `plugin:${name}`;
    const trace = [...current.trace];
    const outcome = await callBounded(plugin, attemptView(attempt, current), deepFreeze(structuredClone(current)), timeoutMs);
    if (!outcome.ok) {
      trace.push({ rule, result: 'fail', detail: `${outcome.detail}; failing closed` });
      return denied(current, name, trace);
    }
    const problem = verdictProblem(outcome.verdict);
    if (problem !== null) {
      trace.push({ rule, result: 'fail', detail: `${problem}; failing closed` });
      return denied(current, name, trace);
    }
    const verdict = outcome.verdict ?? {};
    if (verdict.deny === true) {
      trace.push({ rule, result: 'fail', ...(verdict.note !== undefined ? { detail: verdict.note } : {}) });
      return denied(current, name, trace);
    }
    const services = addServices(current.services, verdict.addServices ?? [], name, options, trace);
    trace.push({ rule, result: 'pass', ...(verdict.note !== undefined ? { detail: verdict.note } : {}) });
    current = { ...current, services, trace };
  }
  return current;
}
