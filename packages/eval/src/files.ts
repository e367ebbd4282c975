/**
 * AlpacaEval's file layout, so outputs move between our tool and theirs:
 * `model_outputs.json` / reference outputs as `[{instruction, output, generator}]`,
 * `annotations.json`, and a leaderboard CSV.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import type { Annotation } from './annotate.js';

export interface ModelOutput {
  instruction: string;
  output: string;
  generator: string;
  dataset?: string;
}

/** Reads and validates a `model_outputs.json`-style file; errors name the file, entry and field. */
export async function readModelOutputs(path: string): Promise<ModelOutput[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: cannot read model outputs (${(err as Error).message})`);
  }
  if (!Array.isArray(raw))
    throw new Error(`${path}: expected a JSON array of {instruction, output, generator}`);
  return raw.map((r, i) => {
    const o = r as Record<string, unknown>;
    for (const f of ['instruction', 'output'] as const) {
      if (typeof o?.[f] !== 'string')
        throw new Error(`${path}: entry ${i}: field '${f}' is missing or not a string`);
    }
    return {
      instruction: o.instruction as string,
      output: o.output as string,
      generator: typeof o.generator === 'string' ? o.generator : 'unknown',
      ...(typeof o.dataset === 'string' ? { dataset: o.dataset } : {}),
    };
  });
}

/**
 * Aligns model outputs with reference outputs by instruction; a model output whose
 * instruction the reference lacks (or the reverse) is an error naming it.
 */
export function alignOutputs(
  model: readonly ModelOutput[],
  reference: readonly ModelOutput[],
): { instructions: string[]; outputs: string[]; references: string[] } {
  const ref = new Map(reference.map((r) => [r.instruction, r.output]));
  const seen = new Set<string>();
  for (const m of model) {
    if (!ref.has(m.instruction))
      throw new Error(
        `model output for instruction ${JSON.stringify(m.instruction.slice(0, 80))} has no reference output (the instruction sets differ)`,
      );
    if (seen.has(m.instruction))
      throw new Error(
        `instruction ${JSON.stringify(m.instruction.slice(0, 80))} appears twice in the model outputs`,
      );
    seen.add(m.instruction);
  }
  const missing = reference.find((r) => !seen.has(r.instruction));
  if (missing)
    throw new Error(
      `reference instruction ${JSON.stringify(missing.instruction.slice(0, 80))} has no model output (the instruction sets differ)`,
    );
  return {
    instructions: model.map((m) => m.instruction),
    outputs: model.map((m) => m.output),
    references: model.map((m) => ref.get(m.instruction)!),
  };
}

export async function writeModelOutputs(
  path: string,
  outputs: readonly ModelOutput[],
): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(outputs, null, 2)}\n`);
}

/** `annotations.json` as AlpacaEval writes it (NaN preferences become null). */
export async function writeAnnotations(
  path: string,
  annotations: readonly Annotation[],
): Promise<void> {
  const rows = annotations.map((a) => ({
    ...a,
    preference: Number.isNaN(a.preference) ? null : a.preference,
  }));
  await writeFileAtomic(path, `${JSON.stringify(rows, null, 2)}\n`);
}

export interface LeaderboardRow {
  name: string;
  win_rate: number;
  standard_error: number;
  n_wins: number;
  n_wins_base: number;
  n_draws: number;
  n_total: number;
  avg_length: number;
  length_controlled_winrate?: number;
  lc_standard_error?: number;
  /** how the LC columns were made: `length_controlled_v1 fit (C …)`, or why they are empty */
  length_controlled_method?: string;
}

/** `leaderboard.csv` with AlpacaEval's columns (model name as the first, unnamed column). */
export function leaderboardCsv(rows: readonly LeaderboardRow[]): string {
  const cols = [
    'win_rate',
    'standard_error',
    'n_wins',
    'n_wins_base',
    'n_draws',
    'n_total',
    'avg_length',
    'length_controlled_winrate',
    'lc_standard_error',
    // only when some row says how its LC was made
    ...(rows.some((r) => r.length_controlled_method !== undefined)
      ? (['length_controlled_method'] as const)
      : []),
  ] as const;
  const esc = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const fmt = (v: number | string | undefined) =>
    v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? '' : esc(String(v));
  return (
    [
      `,${cols.join(',')}`,
      ...rows.map((r) => [esc(r.name), ...cols.map((c) => fmt(r[c]))].join(',')),
    ].join('\n') + '\n'
  );
}

export async function writeLeaderboard(
  path: string,
  rows: readonly LeaderboardRow[],
): Promise<void> {
  await writeFileAtomic(path, leaderboardCsv(rows));
}
