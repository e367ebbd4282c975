/**
 * `@alignjs/eval/node`: everything in `@alignjs/eval`, plus what needs Node — judging with a
 * file cache, position switching, generating outputs, the harness run, the OpenAI-compatible
 * server, external harnesses, and `lengthControlledWinRate` reading `df_gamed.csv` by path.
 */
import { readFileSync } from 'node:fs';
import {
  type DfGamedRow,
  lengthControlledWinRate as fromRows,
  type LcAnnotation,
  type LcGlm,
  type LcResult,
  parseDfGamed,
} from './lc-fit.js';

export * from './annotate.js';
export * from './external.js';
export * from './files.js';
export * from './generate-outputs.js';
export * from './harness-run.js';
export * from './index.js';
export * from './serve.js';
export * from './switch.js';

/** {@link fromRows}, with `dfGamed` also as the path of AlpacaEval's `df_gamed.csv`. */
export function lengthControlledWinRate(
  annotations: readonly LcAnnotation[],
  options: { dfGamed: string | readonly DfGamedRow[]; glm?: LcGlm },
): LcResult {
  const rows =
    typeof options.dfGamed === 'string'
      ? parseDfGamed(readFileSync(options.dfGamed, 'utf8'), options.dfGamed)
      : options.dfGamed;
  return fromRows(annotations, { ...options, dfGamed: rows });
}
