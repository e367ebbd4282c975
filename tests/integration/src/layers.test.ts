/**
 * The package layers, checked on every source file (tests excluded): core and report import
 * nothing of ours; losses and models import only core; the trainer (a library) imports only
 * core, models and report — no eval, no loss package; eval imports neither the trainer, the
 * CLI nor a loss package; only `@alignjs/cli` may import everything. A forbidden import
 * fails here, naming the file. Also: no import cycle between a package's modules.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packages = fileURLToPath(new URL('../../../packages/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.ts$/.test(e.name) &&
      !/\.test\.ts$|test-setup\.ts$|testing\.ts$|test-data\.ts$|test-util\.ts$/.test(e.name)
      ? [p]
      : [];
  });
}
const importsOf = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(@alignjs\/[a-z-]+)/g)].map(
    (m) => m[1]!,
  );

const RULES: [RegExp, (imported: string) => boolean][] = [
  [/^core-logprob$/, () => false],
  [/^loss-|^models$/, (i) => i === '@alignjs/core-logprob'],
  [/^report$/, () => false],
  [/^trainer$/, (i) => ['@alignjs/core-logprob', '@alignjs/models', '@alignjs/report'].includes(i)],
  [
    /^eval$/,
    (i) => i !== '@alignjs/trainer' && i !== '@alignjs/cli' && !i.startsWith('@alignjs/loss-'),
  ],
  [/^cli$/, () => true],
];

describe('package layers', () => {
  it('no package imports a package above it', () => {
    const bad: string[] = [];
    let checked = 0;
    for (const pkg of readdirSync(packages)) {
      const rule = RULES.find(([re]) => re.test(pkg));
      if (!rule) continue;
      for (const f of sources(join(packages, pkg, 'src'))) {
        checked++;
        for (const i of importsOf(f))
          if (!rule[1](i)) bad.push(`${f.slice(packages.length)} imports ${i}`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(bad).toEqual([]);
  });
});

/** Relative imports (type-only ones too) of a module, resolved to source files. */
function localImports(file: string): string[] {
  const dir = file.slice(0, file.lastIndexOf('/'));
  return [
    ...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)\.js'/g),
  ].map((m) => join(dir, `${m[1]}.ts`));
}

describe('module graph', () => {
  it('every package is covered by a layer rule', () => {
    for (const pkg of readdirSync(packages))
      expect(
        RULES.some(([re]) => re.test(pkg)),
        `${pkg} has no layer rule`,
      ).toBe(true);
  });

  it('no import cycle between the modules of any package', () => {
    const cycles: string[] = [];
    for (const pkg of readdirSync(packages)) {
      const files = sources(join(packages, pkg, 'src'));
      const edges = new Map(
        files.map((f) => [f, localImports(f).filter((t) => files.includes(t))]),
      );
      const state = new Map<string, 'open' | 'done'>();
      const visit = (f: string, path: string[]) => {
        if (state.get(f) === 'done') return;
        if (state.get(f) === 'open') {
          cycles.push(
            [...path.slice(path.indexOf(f)), f].map((x) => x.slice(packages.length)).join(' → '),
          );
          return;
        }
        state.set(f, 'open');
        for (const t of edges.get(f) ?? []) visit(t, [...path, f]);
        state.set(f, 'done');
      };
      for (const f of files) visit(f, []);
    }
    expect(cycles).toEqual([]);
  });
});
