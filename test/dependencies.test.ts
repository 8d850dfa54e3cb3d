/**
 * package.json tells the truth (DESIGN.md: "every declared dependency is imported; every
 * import is declared"):
 *   - every bare package any source file imports is declared (a transitive dependency
 *     used directly breaks the day its parent drops it);
 *   - production code (gateway/, adapters/, policies/) loads at run time only
 *     `dependencies`, never a devDependency (`npm ci --omit=dev` must be able to run it);
 *   - every declared dependency is used: imported somewhere, or (a tool) its command run
 *     by a package.json script or from node_modules/.bin by a source file, or (an
 *     `@types/x` stub) `x` is imported and does not ship its own types.
 * Imports are read with the TypeScript parser: static and dynamic imports, re-exports,
 * `require`, `createRequire(...)(...)`, `require.resolve` and `import.meta.resolve`.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIRS = ['gateway', 'adapters', 'policies', 'test', 'bench', 'scripts'];
const PRODUCTION_DIRS = ['gateway/', 'adapters/', 'policies/'];
const SOURCE_FILE = /\.(?:[cm]?ts|[cm]?js)$/;

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
}

interface Import {
  file: string;
  specifier: string;
  /** Erased before run time (`import type`, `export type`, `import('x').T` in a type). */
  typeOnly: boolean;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const dependencies = new Set(Object.keys(pkg.dependencies ?? {}));
const devDependencies = new Set(Object.keys(pkg.devDependencies ?? {}));
const declared = new Set([...dependencies, ...devDependencies]);

function sourceFiles(): string[] {
  const files: string[] = readdirSync(ROOT).filter((name) => SOURCE_FILE.test(name));
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (SOURCE_FILE.test(entry.name)) files.push(path);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return files;
}

/** Every module specifier a source text names, with whether it survives to run time. */
function importsOf(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const add = (node: ts.Node | undefined, typeOnly: boolean) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ file, specifier: node.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly ?? false);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression, node.isTypeOnly);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, true);
    else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const callee = node.expression;
      const name = callee.getText(source);
      const loads =
        callee.kind === ts.SyntaxKind.ImportKeyword ||
        ['require', 'require.resolve', 'import.meta.resolve'].includes(name) ||
        (ts.isCallExpression(callee) && callee.expression.getText(source) === 'createRequire');
      if (loads) add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const BUILTINS = new Set(builtinModules);

/** The npm package a bare specifier names ('@koa/router' for '@koa/router/x'), 'node' for built-ins, null for paths. */
function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:')) return null;
  if (specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0]!)) return 'node';
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** `@types/koa__router` -> '@koa/router', `@types/node` -> 'node'. */
function typedPackage(stub: string): string {
  const name = stub.slice('@types/'.length);
  return name.includes('__') ? `@${name.replace('__', '/')}` : name;
}

function manifest(name: string): Record<string, unknown> | null {
  const file = join(ROOT, 'node_modules', name, 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : null;
}

/** True when the installed package carries its own declarations (then an @types stub is dead weight). */
function shipsOwnTypes(name: string): boolean {
  const m = manifest(name);
  if (!m) return false;
  if (m.types || m.typings) return true;
  if (JSON.stringify(m.exports ?? {}).includes('"types"')) return true;
  return existsSync(join(ROOT, 'node_modules', name, 'index.d.ts'));
}

/** The commands a package installs into node_modules/.bin. */
function binsOf(name: string): string[] {
  const bin = manifest(name)?.bin;
  if (typeof bin === 'string') return [name.split('/').at(-1)!];
  return bin && typeof bin === 'object' ? Object.keys(bin) : [];
}

const files = sourceFiles();
const texts = new Map(files.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));
const imports = files.flatMap((file) => importsOf(file, texts.get(file)!));
const imported = new Set(imports.map((i) => packageOf(i.specifier)).filter((p): p is string => p !== null));

/** Commands package.json scripts run (first word of each `&&`/`||`/`;`-separated step). */
const scriptCommands = new Set(
  Object.values(pkg.scripts ?? {}).flatMap((script) => script.split(/&&|\|\||;/).map((step) => step.trim().split(/\s+/)[0]!)),
);
/** Commands source files run from node_modules/.bin. */
const binCommands = new Set([...texts.values()].flatMap((text) => [...text.matchAll(/node_modules\/\.bin\/([\w.-]+)/g)].map((m) => m[1]!)));

function whyUsed(name: string): string | null {
  if (name.startsWith('@types/')) {
    const target = typedPackage(name);
    if (!imported.has(target)) return null;
    return target === 'node' || !shipsOwnTypes(target) ? `types for ${target}` : null;
  }
  if (imported.has(name)) return 'imported';
  const bin = binsOf(name).find((command) => scriptCommands.has(command) || binCommands.has(command));
  return bin ? `runs ${bin}` : null;
}

test('the import reader sees every way a module is loaded, and which ones are erased', (t) => {
  const found = importsOf('probe.ts', [
    "import type { A } from 'only-types';",
    "import b from 'default-import';",
    "import * as c from '@scope/pkg/deep/path';",
    "export { d } from 're-export';",
    "export type { E } from 'type-re-export';",
    "const f = await import('dynamic');",
    "const g = require('required');",
    "const h = createRequire(import.meta.url)('created');",
    "const i = import.meta.resolve('resolved');",
    "let j: import('type-query').T;",
    "import './local.ts';",
    "import { readFile } from 'node:fs/promises';",
  ].join('\n'));
  t.deepEqual(found.map((i) => [i.specifier, i.typeOnly]), [
    ['only-types', true],
    ['default-import', false],
    ['@scope/pkg/deep/path', false],
    ['re-export', false],
    ['type-re-export', true],
    ['dynamic', false],
    ['required', false],
    ['created', false],
    ['resolved', false],
    ['type-query', true],
    ['./local.ts', false],
    ['node:fs/promises', false],
  ]);
  t.deepEqual(found.map((i) => packageOf(i.specifier)), [
    'only-types', 'default-import', '@scope/pkg', 're-export', 'type-re-export', 'dynamic', 'required', 'created', 'resolved', 'type-query', null, 'node',
  ]);
  t.is(packageOf('crypto'), 'node');
  t.true(imports.some((i) => i.file === 'adapters/directory.ts' && i.specifier === 'ldapts'), 'the real tree is read');
});

test('every bare package a source file imports is declared in package.json', (t) => {
  const undeclared = imports
    .filter((i) => {
      const name = packageOf(i.specifier);
      return name !== null && name !== 'node' && !declared.has(name);
    })
    .map((i) => `${i.file}: ${i.specifier}`);
  t.deepEqual(undeclared, []);
});

test('production code loads only `dependencies` at run time, never a devDependency', (t) => {
  const devOnly = imports
    .filter((i) => PRODUCTION_DIRS.some((dir) => i.file.startsWith(dir)) && !i.typeOnly)
    .filter((i) => {
      const name = packageOf(i.specifier);
      return name !== null && name !== 'node' && !dependencies.has(name);
    })
    .map((i) => `${i.file}: ${i.specifier}`);
  t.deepEqual(devOnly, []);
});

test('every declared dependency is used: imported, run as a command, or the types of an imported package that has none of its own', (t) => {
  const unused = [...declared].filter((name) => whyUsed(name) === null);
  t.deepEqual(unused, [], `declared but never used: ${unused.join(', ')}`);
  t.is(whyUsed('typescript'), 'imported', 'this very test imports the TypeScript parser');
  t.is(whyUsed('dependency-cruiser'), 'runs depcruise');
});
