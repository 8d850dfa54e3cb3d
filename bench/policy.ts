/**
 * Policy engine benchmark: 1,000,000 denylist entries (half addresses, half
 * domains) and 10,000 companies of 5 domains each. Measures snapshot compile time,
 * heap held by the snapshot (heapUsed delta after gc) and decisions/second on one
 * core over a mix of attempts (allowed by company, allowed by subdomain, agent add,
 * denylisted address, +tag variant, denylisted parent domain, unknown domain,
 * invalid address).
 *
 * Also the cost of a delta on that snapshot: 10,000 denylist entries added, one company
 * moved and the policy replaced (what each process does per admin change).
 *
 * Run: npx node --expose-gc bench/policy.ts   (without --expose-gc the heap figure is rough)
 * Targets: >= 500,000 decisions/s, compile < 2 s, snapshot < 300 MB.
 */
import { fileURLToPath } from 'node:url';
import { compileSnapshot } from '../policies/snapshot.ts';
import { evaluate } from '../policies/evaluate.ts';
import { applyDelta } from '../policies/delta.ts';
import { DEFAULT_POLICY } from '../policies/types.ts';
import type { Attempt, Company, DenylistEntry, Policy, Service } from '../policies/types.ts';

export interface BenchResult {
  bench: string;
  metric: string;
  value: number;
  unit: string;
}

const DENYLIST_SIZE = 1_000_000;
const COMPANY_COUNT = 10_000;
const DOMAINS_PER_COMPANY = 5;
const MEASURE_MS = 2_000;

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

function buildServices(): Service[] {
  return Array.from({ length: 20 }, (_, i) => ({ id: `svc-${i}`, name: `Service ${i}`, requestAccess: 'granted' as const }));
}

function buildCompanies(): Company[] {
  return Array.from({ length: COMPANY_COUNT }, (_, i) => ({
    id: `co-${i}`,
    name: `Company ${i}`,
    acceptedDomains: Array.from({ length: DOMAINS_PER_COMPANY }, (_, j) => `company${i}-d${j}.example`),
    allowSubdomains: true,
    selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: i % 2 === 0 },
    services: [`svc-${i % 20}`, `svc-${(i + 7) % 20}`],
  }));
}

function buildDenylist(): Array<Pick<DenylistEntry, 'value' | 'kind'>> {
  const entries: Array<Pick<DenylistEntry, 'value' | 'kind'>> = new Array(DENYLIST_SIZE);
  for (let i = 0; i < DENYLIST_SIZE; i += 1) {
    entries[i] = i % 2 === 0 ? { value: `spammer${i}@mail${i % 997}.example`, kind: 'email' } : { value: `junk${i}.example`, kind: 'domain' };
  }
  return entries;
}

function buildAttempts(): Attempt[] {
  const attempts: Attempt[] = [];
  for (let k = 0; k < 4096; k += 1) {
    const c = (k * 7919) % COMPANY_COUNT;
    const d = (k * 104729) % DENYLIST_SIZE;
    const even = d - (d % 2);
    const odd = even + 1;
    const pick = k % 8;
    const email = [
      `Ann.${k}@Company${c}-d${k % 5}.example`, // allowed_company
      `bob${k}@eu.company${c}-d1.example`, // allowed_company by subdomain
      `spammer${even}@mail${even % 997}.example`, // denylisted_email
      `spammer${even}+promo@mail${even % 997}.example`, // denylisted_email (+tag)
      `x${k}@a.b.junk${odd}.example`, // denylisted_domain (parent)
      `carol${k}@unknown${k}.example`, // domain_not_accepted
      `dave${k}@company${c}-d2.example`, // allowed_agent
      `not an address ${k}`, // invalid_email
    ][pick] as string;
    attempts.push({ method: pick === 6 ? 'agent' : k % 3 === 0 ? 'google' : 'portal', email, emailVerified: true });
  }
  return attempts;
}

/**
 * Decisions per wall-clock second, and per CPU second of this process (user + system,
 * GC helper threads included): the second figure is what one dedicated core gives
 * when the machine is shared with other work.
 */
function measureDecisions(attempts: Attempt[], snapshot: ReturnType<typeof compileSnapshot>): { perSecond: number; perCpuSecond: number; allowed: number } {
  let allowed = 0;
  for (let i = 0; i < 20_000; i += 1) allowed += evaluate(attempts[i % attempts.length] as Attempt, snapshot).outcome === 'allow' ? 1 : 0;
  let count = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < MEASURE_MS) {
    for (let i = 0; i < attempts.length; i += 1) {
      if (evaluate(attempts[i] as Attempt, snapshot).outcome === 'allow') allowed += 1;
    }
    count += attempts.length;
    elapsed = performance.now() - start;
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { perSecond: Math.round((count / elapsed) * 1000), perCpuSecond: Math.round((count / cpuMs) * 1000), allowed };
}

/** Runs the benchmark and returns its figures. */
export async function run(): Promise<BenchResult[]> {
  const policy: Policy = { ...DEFAULT_POLICY, selfRegistration: 'companies' };
  const services = buildServices();
  const companies = JSON.parse(JSON.stringify(buildCompanies())) as Company[];
  // A JSON round trip gives flat strings, as a store would return them; template-literal
  // strings are cons strings that the Sets would flatten, skewing the heap figure.
  const denylist = JSON.parse(JSON.stringify(buildDenylist())) as ReturnType<typeof buildDenylist>;
  const attempts = buildAttempts();
  collectGarbage();
  const heapBefore = process.memoryUsage().heapUsed;
  const compileStart = performance.now();
  const snapshot = compileSnapshot({ policy, companies, services, denylist });
  const compileMs = performance.now() - compileStart;
  collectGarbage();
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / (1024 * 1024);
  const { perSecond, perCpuSecond, allowed } = measureDecisions(attempts, snapshot);
  if (allowed === 0 || snapshot.skipped.length !== 0 || denylist.length !== DENYLIST_SIZE) throw new Error('benchmark data is wrong');
  // Deltas on that snapshot: what a process does per admin change instead of compiling again.
  const bulk = Array.from({ length: 10_000 }, (_, i) => ({ value: `bulk${i}.example`, kind: 'domain' as const }));
  let t0 = performance.now();
  let changed = applyDelta(snapshot, { op: 'denylist.add', entries: bulk });
  const bulkMs = performance.now() - t0;
  t0 = performance.now();
  changed = applyDelta(changed, { op: 'company.put', company: { ...companies[42]!, acceptedDomains: ['moved.example', ...companies[42]!.acceptedDomains.slice(1)] } });
  changed = applyDelta(changed, { op: 'policy.put', policy: { ...policy, selfRegistration: 'anyone' } });
  const smallMs = performance.now() - t0;
  if (!changed.deniedDomains.has('bulk9999.example') || changed.companyByDomain.get('moved.example')?.id !== 'co-42') throw new Error('delta did not apply');
  return [
    { bench: 'policy', metric: 'delta_10000_denylist_entries', value: Math.round(bulkMs * 10) / 10, unit: 'ms' },
    { bench: 'policy', metric: 'delta_company_and_policy', value: Math.round(smallMs * 100) / 100, unit: 'ms' },
    { bench: 'policy', metric: 'compile_time', value: Math.round(compileMs), unit: 'ms' },
    { bench: 'policy', metric: 'snapshot_heap', value: Math.round(heapMb * 10) / 10, unit: 'MB' },
    { bench: 'policy', metric: 'decisions_per_second', value: perSecond, unit: 'decisions/s' },
    { bench: 'policy', metric: 'decisions_per_cpu_second', value: perCpuSecond, unit: 'decisions/cpu-s' },
  ];
}

const TARGETS: Record<string, string> = {
  compile_time: '< 2000',
  snapshot_heap: '< 300',
  decisions_per_second: '>= 500000',
  decisions_per_cpu_second: '>= 500000',
  delta_10000_denylist_entries: '< 100',
  delta_company_and_policy: '< 10',
};

function printTable(results: BenchResult[]): void {
  const rows = [['name', 'value', 'unit', 'target'], ...results.map((r) => [r.metric, String(r.value), r.unit, TARGETS[r.metric] ?? ''])];
  const widths = [0, 1, 2, 3].map((col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  for (const row of rows) console.log(row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join(' | '));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!(globalThis as { gc?: unknown }).gc) console.error('note: run with --expose-gc for an accurate heap figure');
  printTable(await run());
}
