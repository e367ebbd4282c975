/**
 * The `alignjs` commands and their flags, declared once: `--help` text per command, unknown
 * flags rejected (with the nearest name), values checked (integers and ranges) before any
 * work starts.
 */
import { suggest } from '@alignjs/core-logprob';

export interface FlagSpec {
  /** `bool` takes no value */
  kind: 'string' | 'int' | 'number' | 'bool';
  /** inclusive bounds for numbers */
  min?: number;
  max?: number;
  /** the value's placeholder and what it does */
  help: string;
  required?: boolean;
}

export interface CommandSpec {
  summary: string;
  flags: Record<string, FlagSpec>;
}

const MODEL: FlagSpec = { kind: 'string', help: 'DIR  model directory, or builtin:tiny (default)' };
const CONFIG: FlagSpec = { kind: 'string', help: 'FILE  YAML or JSON config', required: true };

export const COMMANDS: Readonly<Record<string, CommandSpec>> = Object.freeze({
  demo: {
    summary: 'align the built-in tiny model with each objective and write a report',
    flags: {
      '--quick': { kind: 'bool', help: 'a reduced run (CI)' },
      '--output': { kind: 'string', help: 'DIR  output folder (default alignjs-demo)' },
      '--steps': { kind: 'int', min: 1, help: 'N  training steps per objective (default 60)' },
      '--seeds': {
        kind: 'int',
        min: 1,
        help: 'N  seeds to run; intervals need ≥ 2 (default 8, 1 with --quick)',
      },
      '--seed': { kind: 'int', min: 0, help: 'S  the first seed (default 1)' },
    },
  },
  train: {
    summary: 'train a policy (config fields: see the trainer README)',
    flags: {
      '--config': CONFIG,
      '--resume': { kind: 'string', help: 'DIR  a checkpoint directory to continue from' },
    },
  },
  'precompute-ref': {
    summary: 'compute and cache the reference log-probs of a run only',
    flags: { '--config': CONFIG },
  },
  'train-rm': {
    summary: 'train a Bradley–Terry reward model on pairwise data',
    flags: {
      '--config': CONFIG,
      '--resume': { kind: 'string', help: 'DIR  continue from a checkpoint-<step> directory' },
    },
  },
  generate: {
    summary: 'write AlpacaEval-style model_outputs.json for a list of instructions',
    flags: {
      '--model': MODEL,
      '--instructions': {
        kind: 'string',
        required: true,
        help: 'FILE  JSON list of {instruction}',
      },
      '--output': { kind: 'string', help: 'FILE  (default model_outputs.json)' },
      '--generator': { kind: 'string', help: 'NAME  generator name in the outputs' },
      '--max-tokens': { kind: 'int', min: 1, help: 'N  new tokens at most (default 256)' },
      '--temperature': { kind: 'number', min: 0, max: 2, help: 'T  0 = greedy (default)' },
      '--seed': { kind: 'int', help: 'S  sampling seed (default 0)' },
    },
  },
  judge: {
    summary: 'judge model outputs against reference outputs with an OpenAI-compatible judge',
    flags: {
      '--model-outputs': { kind: 'string', required: true, help: 'FILE  model_outputs.json' },
      '--reference-outputs': { kind: 'string', required: true, help: 'FILE  reference outputs' },
      '--base-url': { kind: 'string', required: true, help: 'URL  the judge API (…/v1)' },
      '--judge-model': { kind: 'string', required: true, help: 'NAME  judge model' },
      '--annotator': {
        kind: 'string',
        help: 'NAME  prompt + parser of the judge (default alignjs-pairwise-v1; AlpacaEval annotators_config)',
      },
      '--output': { kind: 'string', required: true, help: 'DIR  annotations, cache, leaderboard' },
      '--concurrency': { kind: 'int', min: 1, help: 'N  requests in flight (default 4)' },
      '--budget': { kind: 'int', min: 1, help: 'N  requests at most' },
      '--max-tokens': { kind: 'int', min: 1, help: 'N  judge answer tokens at most (default 50)' },
      '--df-gamed': { kind: 'string', help: "CSV  AlpacaEval's df_gamed.csv: adds the LC fit" },
      '--glm': {
        kind: 'string',
        help: 'NAME  length_controlled_v1 (default) | length_controlled_noreg | length_controlled_minimal',
      },
    },
  },
  serve: {
    summary: 'an OpenAI-compatible server (/v1/models, /v1/completions, /v1/chat/completions)',
    flags: {
      '--model': MODEL,
      '--port': { kind: 'int', min: 0, max: 65535, help: 'N  (default 8000)' },
      '--host': { kind: 'string', help: 'ADDR  (default 127.0.0.1)' },
      '--max-queue': {
        kind: 'int',
        min: 1,
        help: 'N  requests waiting or running at most (default 16); more get 503',
      },
      '--max-tokens-limit': { kind: 'int', min: 1, help: 'N  cap on max_tokens (default 256)' },
    },
  },
  harness: {
    summary: 'benchmarks over local task files (lm-eval results layout), or an external harness',
    flags: {
      '--model': MODEL,
      '--task': {
        kind: 'string',
        help: 'NAME  arc_easy, hellaswag, mmlu, … (required but for alpaca_eval)',
      },
      '--docs': { kind: 'string', help: 'FILE.jsonl  the task documents' },
      '--fewshot': { kind: 'int', min: 0, help: 'K  few-shot examples (default 0)' },
      '--limit': { kind: 'int', min: 1, help: 'N  documents at most' },
      '--output': { kind: 'string', help: 'FILE or DIR  results (default results.json)' },
      '--external': {
        kind: 'string',
        help: 'lm_eval | alpaca_eval  run that tool against our server',
      },
      '--model-outputs': { kind: 'string', help: 'FILE  (alpaca_eval)' },
    },
  },
});

/** `alignjs --help`. */
export function mainHelp(version: string): string {
  const w = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `alignjs ${version} — preference optimization for TypeScript

Usage: alignjs <command> [flags]     (alignjs <command> --help for its flags)

${Object.entries(COMMANDS)
  .map(([c, s]) => `  ${c.padEnd(w)}  ${s.summary}`)
  .join('\n')}

  --version   print the version
`;
}

/** `alignjs <command> --help`. */
export function commandHelp(cmd: string): string {
  const s = COMMANDS[cmd]!;
  const w = Math.max(...Object.keys(s.flags).map((f) => f.length));
  return `alignjs ${cmd} — ${s.summary}

Flags:
${Object.entries(s.flags)
  .map(([f, x]) => `  ${f.padEnd(w)}  ${x.help}${x.required ? ' (required)' : ''}`)
  .join('\n')}
  ${'--help'.padEnd(w)}  this text
`;
}

/**
 * Checks a command's flags before any work: every flag known, values present and valid,
 * required ones given. Returns the values by flag (booleans as `true`).
 */
export function checkFlags(cmd: string, args: readonly string[]): Map<string, string | true> {
  const spec = COMMANDS[cmd]!;
  const out = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--'))
      throw new Error(
        `${cmd}: unexpected argument '${a}' (flags start with --; see alignjs ${cmd} --help)`,
      );
    const f = spec.flags[a];
    if (!f)
      throw new Error(
        `${cmd}: unknown flag ${a}${suggest(a, Object.keys(spec.flags))} (see alignjs ${cmd} --help)`,
      );
    if (out.has(a)) throw new Error(`${cmd}: ${a} given twice`);
    if (f.kind === 'bool') {
      out.set(a, true);
      continue;
    }
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${cmd}: ${a} needs a value`);
    i++;
    if (f.kind === 'int' || f.kind === 'number') {
      const n = Number(v);
      const ok =
        v.trim() !== '' &&
        Number.isFinite(n) &&
        (f.kind === 'number' || Number.isInteger(n)) &&
        (f.min === undefined || n >= f.min) &&
        (f.max === undefined || n <= f.max);
      if (!ok) {
        const range = [
          f.min !== undefined ? `>= ${f.min}` : '',
          f.max !== undefined ? `<= ${f.max}` : '',
        ]
          .filter(Boolean)
          .join(' and ');
        throw new Error(
          `${cmd}: ${a} must be ${f.kind === 'int' ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got '${v}'`,
        );
      }
    }
    out.set(a, v);
  }
  for (const [f, x] of Object.entries(spec.flags))
    if (x.required && !out.has(f))
      throw new Error(`${cmd} needs ${f} ${x.help.split(' ')[0]} (see alignjs ${cmd} --help)`);
  return out;
}
