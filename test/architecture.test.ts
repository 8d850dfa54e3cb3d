/**
 * The import rules of DESIGN.md hold for the whole tree (.dependency-cruiser.cjs): no
 * import cycles, type-only ones included; policies/ imports nothing of gateway/ or
 * adapters/; adapters/ never imports gateway/; only the entry points import gateway/app.ts.
 * The checker is shown to catch a type-only cycle, so a green run means something.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: Array<{ name: string }>;
}

function cruise(paths: string[], extra: string[] = []): Violation[] {
  const run = spawnSync(`${root}node_modules/.bin/depcruise`, ['--config', '.dependency-cruiser.cjs', '--output-type', 'json', ...extra, ...paths], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (!run.stdout) throw new Error(`depcruise printed nothing (exit ${run.status}): ${run.stderr}`);
  const report = JSON.parse(run.stdout) as { summary: { violations: Violation[]; totalCruised: number } };
  if (report.summary.totalCruised === 0) throw new Error('depcruise cruised no module');
  return report.summary.violations;
}

const describe = (v: Violation) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle ${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`;

test('gateway, adapters and policies break no import rule (cycles, purity of policies/, direction of adapters/)', (t) => {
  const violations = cruise(['gateway', 'adapters', 'policies']);
  t.deepEqual(violations.map(describe), []);
});

test('the checker catches a type-only import cycle', (t) => {
  const violations = cruise(['test/fixtures/cycle'], ['--exclude', '^node_modules/']);
  t.true(violations.some((v) => v.rule.name === 'no-circular'), violations.map(describe).join('\n'));
});
