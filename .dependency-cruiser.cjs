/**
 * The import rules of DESIGN.md, checked by test/architecture.test.ts (`npx depcruise
 * --config .dependency-cruiser.cjs gateway adapters policies`):
 *   - no import cycles anywhere, type-only imports included;
 *   - policies/ is pure: it imports nothing from gateway/ or adapters/;
 *   - adapters/ never imports gateway/ (it may use policies/ types);
 *   - only the entry points import the composition root gateway/app.ts;
 *   - every relative import resolves.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles, type-only ones included, make modules impossible to read or load alone.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'policies-are-pure',
      severity: 'error',
      comment: 'policies/ holds pure decision logic: no I/O, so no gateway/ or adapters/ imports.',
      from: { path: '^policies/' },
      to: { path: '^(gateway|adapters)/' },
    },
    {
      name: 'adapters-do-not-know-the-gateway',
      severity: 'error',
      comment: 'Dependencies point inward: gateway -> adapters, never the other way.',
      from: { path: '^adapters/' },
      to: { path: '^gateway/' },
    },
    {
      name: 'only-entry-points-import-the-composition-root',
      severity: 'error',
      comment: 'Route modules take what they need from gateway/runtime/context.ts, never from gateway/app.ts.',
      from: { path: '^gateway/', pathNot: '^gateway/(main|app)\\.ts$' },
      to: { path: '^gateway/app\\.ts$' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|test|bench|scripts)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
