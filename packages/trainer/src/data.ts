/**
 * Datasets in the schemas TRL users already have (JSONL, or a JSON array):
 * - pairwise `{prompt, chosen, rejected}` (+ optional `score_chosen`, `score_rejected`);
 *   strings, or conversational lists of `{role, content}`; also the implicit-prompt form
 *   where `chosen` and `rejected` are whole conversations sharing a prefix
 * - unpaired binary `{prompt, completion, label}` (KTO)
 * - scored `{prompt, completion, score}`
 * - multi-response `{prompt, completions: [...], scores: [...]}` (UltraFeedback-style)
 * Every record is validated before training; errors name the file, line and field.
 */
import { type FeedbackKind, parseJsonRecords, RecordError } from '@alignjs/core-logprob';
import type { ChatMessage } from '@alignjs/models';

export type Text = string | ChatMessage[];

export type Example =
  | {
      kind: 'pairwise';
      line: number;
      prompt: Text;
      chosen: Text;
      rejected: Text;
      scoreChosen?: number;
      scoreRejected?: number;
    }
  | { kind: 'binary'; line: number; prompt: Text; completion: Text; label: 0 | 1 }
  | { kind: 'score'; line: number; prompt: Text; completion: Text; score: number }
  | { kind: 'multi'; line: number; prompt: Text; completions: Text[]; scores: number[] };

/** A dataset's kind: one feedback kind, or binary and score records mixed (UNA's mixed mode). */
export type DataKind = FeedbackKind | 'mixed';

export interface Dataset {
  path: string;
  kind: DataKind;
  examples: Example[];
}

/** A user mistake in a data file: names the file, the line and the field. */
export class DataError extends Error {
  constructor(
    readonly path: string,
    readonly line: number,
    readonly field: string | undefined,
    message: string,
  ) {
    super(`${path}:${line}${field ? `: field '${field}'` : ''}: ${message}`);
    this.name = 'DataError';
  }
}

const FIELDS: Record<FeedbackKind, string> = {
  pairwise: '{prompt, chosen, rejected}',
  binary: '{prompt, completion, label}',
  score: '{prompt, completion, score}',
  multi: '{prompt, completions, scores}',
};

export function describeKind(kind: DataKind): string {
  return kind === 'mixed'
    ? `mixed binary ${FIELDS.binary} and score ${FIELDS.score}`
    : `${kind} ${FIELDS[kind]}`;
}

function detect(rec: Record<string, unknown>): FeedbackKind | undefined {
  if ('chosen' in rec || 'rejected' in rec) return 'pairwise';
  if ('completions' in rec) return 'multi';
  if ('label' in rec) return 'binary';
  if ('score' in rec) return 'score';
  return undefined;
}

function checkText(
  v: unknown,
  path: string,
  line: number,
  field: string,
  allowEmpty = false,
): Text {
  if (typeof v === 'string') {
    if (!allowEmpty && v.trim() === '') throw new DataError(path, line, field, 'is empty');
    return v;
  }
  if (Array.isArray(v)) {
    if (!allowEmpty && v.length === 0)
      throw new DataError(path, line, field, 'is an empty conversation');
    v.forEach((m, i) => {
      const msg = m as Record<string, unknown>;
      if (
        !msg ||
        typeof msg !== 'object' ||
        typeof msg.role !== 'string' ||
        typeof msg.content !== 'string'
      ) {
        throw new DataError(
          path,
          line,
          `${field}[${i}]`,
          'must be a message {role, content} with string role and content',
        );
      }
    });
    return v as ChatMessage[];
  }
  if (v === undefined) throw new DataError(path, line, field, 'is missing');
  throw new DataError(
    path,
    line,
    field,
    `must be a string or a list of {role, content} messages, got ${typeof v}`,
  );
}

function checkScore(
  v: unknown,
  path: string,
  line: number,
  field: string,
  range?: [number, number],
): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new DataError(path, line, field, `must be a finite number, got ${JSON.stringify(v)}`);
  if (range && (v < range[0] || v > range[1])) {
    throw new DataError(
      path,
      line,
      field,
      `score ${v} is outside the declared range [${range[0]}, ${range[1]}]`,
    );
  }
  return v;
}

/** Splits two conversations into their shared prefix (the prompt) and the two continuations. */
function splitImplicitPrompt(
  chosen: ChatMessage[],
  rejected: ChatMessage[],
  path: string,
  line: number,
) {
  let n = 0;
  while (
    n < chosen.length &&
    n < rejected.length &&
    chosen[n]!.role === rejected[n]!.role &&
    chosen[n]!.content === rejected[n]!.content
  )
    n++;
  if (n === 0)
    throw new DataError(
      path,
      line,
      'chosen',
      'implicit-prompt conversations share no prefix (add a prompt field)',
    );
  if (n === chosen.length || n === rejected.length)
    throw new DataError(
      path,
      line,
      'chosen',
      'chosen and rejected are identical after the shared prompt',
    );
  return { prompt: chosen.slice(0, n), chosen: chosen.slice(n), rejected: rejected.slice(n) };
}

export function parseRecord(
  raw: unknown,
  path: string,
  line: number,
  range?: [number, number],
): Example {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new DataError(path, line, undefined, 'a record must be a JSON object');
  const rec = raw as Record<string, unknown>;
  const kind = detect(rec);
  if (!kind) {
    throw new DataError(
      path,
      line,
      undefined,
      `unknown record shape with fields ${JSON.stringify(Object.keys(rec))}; expected one of ${Object.values(FIELDS).join(', ')}`,
    );
  }
  switch (kind) {
    case 'pairwise': {
      if (rec.prompt === undefined && Array.isArray(rec.chosen) && Array.isArray(rec.rejected)) {
        const chosen = checkText(rec.chosen, path, line, 'chosen') as ChatMessage[];
        const rejected = checkText(rec.rejected, path, line, 'rejected') as ChatMessage[];
        return { kind, line, ...splitImplicitPrompt(chosen, rejected, path, line) };
      }
      const ex: Example = {
        kind,
        line,
        prompt: checkText(rec.prompt, path, line, 'prompt', true),
        chosen: checkText(rec.chosen, path, line, 'chosen'),
        rejected: checkText(rec.rejected, path, line, 'rejected'),
      };
      if (rec.score_chosen !== undefined)
        ex.scoreChosen = checkScore(rec.score_chosen, path, line, 'score_chosen', range);
      if (rec.score_rejected !== undefined)
        ex.scoreRejected = checkScore(rec.score_rejected, path, line, 'score_rejected', range);
      return ex;
    }
    case 'binary': {
      const l = rec.label;
      if (l !== true && l !== false && l !== 0 && l !== 1)
        throw new DataError(
          path,
          line,
          'label',
          `must be true/false or 1/0, got ${JSON.stringify(l)}`,
        );
      return {
        kind,
        line,
        prompt: checkText(rec.prompt, path, line, 'prompt', true),
        completion: checkText(rec.completion, path, line, 'completion'),
        label: l === true || l === 1 ? 1 : 0,
      };
    }
    case 'score':
      return {
        kind,
        line,
        prompt: checkText(rec.prompt, path, line, 'prompt', true),
        completion: checkText(rec.completion, path, line, 'completion'),
        score: checkScore(rec.score, path, line, 'score', range),
      };
    case 'multi': {
      if (!Array.isArray(rec.completions) || rec.completions.length === 0)
        throw new DataError(path, line, 'completions', 'must be a non-empty list');
      if (!Array.isArray(rec.scores))
        throw new DataError(path, line, 'scores', 'is missing (one score per completion)');
      if (rec.scores.length !== rec.completions.length) {
        throw new DataError(
          path,
          line,
          'scores',
          `has ${rec.scores.length} entries for ${rec.completions.length} completions`,
        );
      }
      return {
        kind,
        line,
        prompt: checkText(rec.prompt, path, line, 'prompt', true),
        completions: rec.completions.map((c, i) => checkText(c, path, line, `completions[${i}]`)),
        scores: rec.scores.map((s, i) => checkScore(s, path, line, `scores[${i}]`, range)),
      };
    }
  }
}

/**
 * The records of a JSONL file, or of a JSON array when the text starts with `[`, each with
 * its 1-based line (array index + 1 for an array). Malformed JSON names the file and line.
 */
function jsonRecords(source: string, path: string): [unknown, number][] {
  try {
    return parseJsonRecords(source, path);
  } catch (err) {
    if (err instanceof RecordError) throw new DataError(path, err.line, undefined, err.detail);
    throw err;
  }
}

/** Parses file contents (JSONL, or a JSON array) into validated examples of one kind. */
export function parseDataset(text: string, path: string, range?: [number, number]): Dataset {
  const raws = jsonRecords(text, path);
  if (raws.length === 0) throw new DataError(path, 1, undefined, 'the file has no records');
  const examples = raws.map(([r, line]) => parseRecord(r, path, line, range));
  let kind: DataKind = examples[0]!.kind;
  const kinds = new Set(examples.map((e) => e.kind));
  // binary and score records may share a file (UNA's mixed feedback); nothing else mixes
  if (kinds.size === 2 && kinds.has('binary') && kinds.has('score')) kind = 'mixed';
  const other = kind === 'mixed' ? undefined : examples.find((e) => e.kind !== kind);
  if (other) {
    throw new DataError(
      path,
      other.line,
      undefined,
      `record is ${describeKind(other.kind)} but line ${examples[0]!.line} is ${describeKind(kind)}; one file holds one kind (binary and score records may mix, for UNA's mixed feedback)`,
    );
  }
  return { path, kind, examples };
}

/** Checks that an objective accepts the dataset's kind; the error says which needs what. */
export function checkKind(
  dataset: Dataset,
  objective: string,
  accepted: readonly FeedbackKind[],
): void {
  const ok =
    dataset.kind === 'mixed'
      ? accepted.includes('binary') && accepted.includes('score')
      : accepted.includes(dataset.kind);
  if (!ok) {
    throw new Error(
      `${dataset.path}: the data is ${describeKind(dataset.kind)}, but objective '${objective}' needs ${accepted.map(describeKind).join(' or ')}`,
    );
  }
}

/**
 * Prompts for online training: JSONL or a JSON array of records with a `prompt` (string or
 * conversation); other fields are ignored, so any of the datasets above also works.
 */
export function parsePrompts(text: string, path: string): { line: number; prompt: Text }[] {
  const raws = jsonRecords(text, path);
  if (!raws.length) throw new DataError(path, 1, undefined, 'the file has no records');
  return raws.map(([r, line]) => {
    if (!r || typeof r !== 'object')
      throw new DataError(path, line, undefined, 'a record must be a JSON object');
    return { line, prompt: checkText((r as Record<string, unknown>).prompt, path, line, 'prompt') };
  });
}
