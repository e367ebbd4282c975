/**
 * The package layers, checked on every source file (tests excluded): core imports nothing of
 * ours; losses and models import only core; eval imports neither the trainer nor a loss
 * package. (The trainer's own rule — no eval, no losses — waits for the CLI package of the
 * trainer-redesign issue.) A forbidden import fails here, naming the file.
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
  [/^eval$/, (i) => i !== '@alignjs/trainer' && !i.startsWith('@alignjs/loss-')],
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
