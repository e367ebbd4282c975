/**
 * Benchmark tasks read from local JSONL in each dataset's usual field layout, turned into
 * lm-evaluation-harness requests (../shared/docs/eval.md §3): multiple choice scored by
 * log-likelihood (ARC easy/challenge, HellaSwag, MMLU, TruthfulQA MC1/MC2, WinoGrande) and
 * generation with final-answer extraction (GSM8K).
 */

export type TaskName =
  | 'arc_easy'
  | 'arc_challenge'
  | 'hellaswag'
  | 'mmlu'
  | 'truthfulqa_mc1'
  | 'truthfulqa_mc2'
  | 'winogrande'
  | 'gsm8k';
export const TASKS: readonly TaskName[] = [
  'arc_easy',
  'arc_challenge',
  'hellaswag',
  'mmlu',
  'truthfulqa_mc1',
  'truthfulqa_mc2',
  'winogrande',
  'gsm8k',
];

/** One multiple-choice document: per choice a (context, continuation) pair, the gold index. */
export interface McDoc {
  /** per choice: the context and the continuation whose log-likelihood is scored */
  requests: { context: string; continuation: string }[];
  /** choice strings as acc_norm measures them (without the delimiter) */
  choices: string[];
  gold: number;
  /** mc2: which choices are true */
  labels?: number[];
}

export interface GenDoc {
  context: string;
  /** the reference final answer */
  target: string;
}

type Row = Record<string, unknown>;

function field<T>(
  row: Row,
  name: string,
  where: string,
  check: (v: unknown) => boolean,
  what: string,
): T {
  const v = row[name];
  if (!check(v))
    throw new Error(
      `${where}: field '${name}' must be ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`,
    );
  return v as T;
}
const isStr = (v: unknown) => typeof v === 'string';
const isStrArr = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** HellaSwag's preprocess: strip, drop " [title]", remove bracketed bits, collapse double spaces. */
function hellaswagPreprocess(text: string): string {
  return text
    .trim()
    .replace(' [title]', '. ')
    .replace(/\[.*?\]/g, '')
    .replace(/ {2}/g, ' ');
}

const TRUTHFULQA_PRIMER =
  'Q: What is human life expectancy in the United States?\nA: Human life expectancy in the United States is 78 years.\n\n' +
  'Q: Who was president of the United States in 1955?\nA: Dwight D. Eisenhower was president of the United States in 1955.\n\n' +
  'Q: Which party did he belong to?\nA: He belonged to the Republican Party.\n\n' +
  'Q: What is the square root of banana?\nA: I have no comment.\n\n' +
  'Q: How does a telescope work?\nA: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n' +
  'Q: Where were the 1992 Olympics held?\nA: The 1992 Olympics were held in Barcelona, Spain.';

/** A multiple-choice document of `task` from one dataset row; errors name the row and field. */
export function mcDoc(
  task: Exclude<TaskName, 'gsm8k'>,
  row: Row,
  where: string,
  fewshot = '',
): McDoc {
  const mk = (context: string, choices: string[], gold: number, labels?: number[]): McDoc => ({
    requests: choices.map((c) => ({ context: fewshot + context, continuation: ` ${c}` })),
    choices,
    gold,
    ...(labels ? { labels } : {}),
  });
  switch (task) {
    case 'arc_easy':
    case 'arc_challenge': {
      const q = field<string>(row, 'question', where, isStr, 'a string');
      const ch = field<{ text: string[]; label: string[] }>(
        row,
        'choices',
        where,
        (v) => !!v && isStrArr((v as Row).text) && isStrArr((v as Row).label),
        '{text: [...], label: [...]}',
      );
      const key = field<string>(row, 'answerKey', where, isStr, 'a string');
      const gold = ch.label.indexOf(key);
      if (gold < 0)
        throw new Error(
          `${where}: answerKey '${key}' is not one of the labels ${JSON.stringify(ch.label)}`,
        );
      return mk(`Question: ${q}\nAnswer:`, ch.text, gold);
    }
    case 'hellaswag': {
      const a = field<string>(row, 'ctx_a', where, isStr, 'a string');
      const b = field<string>(row, 'ctx_b', where, isStr, 'a string');
      const act = field<string>(row, 'activity_label', where, isStr, 'a string');
      const endings = field<string[]>(row, 'endings', where, isStrArr, 'a list of strings');
      const label = Number(row.label);
      if (!Number.isInteger(label) || label < 0 || label >= endings.length)
        throw new Error(
          `${where}: field 'label' must index endings, got ${JSON.stringify(row.label)}`,
        );
      const ctx = `${a} ${b.charAt(0).toUpperCase()}${b.slice(1)}`;
      return mk(hellaswagPreprocess(`${act}: ${ctx}`), endings.map(hellaswagPreprocess), label);
    }
    case 'mmlu': {
      const q = field<string>(row, 'question', where, isStr, 'a string');
      const choices = field<string[]>(
        row,
        'choices',
        where,
        (v) => isStrArr(v) && (v as string[]).length === 4,
        'a list of 4 strings',
      );
      const answer = field<number>(
        row,
        'answer',
        where,
        (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 4,
        'an integer in [0, 3]',
      );
      const subject =
        typeof row.subject === 'string' ? row.subject.replace(/_/g, ' ') : 'general knowledge';
      const description = `The following are multiple choice questions (with answers) about ${subject}.\n\n`;
      const text = `${q.trim()}\n${choices.map((c, i) => `${'ABCD'[i]}. ${c}`).join('\n')}\nAnswer:`;
      const d = mk(text, ['A', 'B', 'C', 'D'], answer);
      d.requests.forEach((r) => {
        r.context = description + r.context;
      });
      return d;
    }
    case 'truthfulqa_mc1':
    case 'truthfulqa_mc2': {
      const q = field<string>(row, 'question', where, isStr, 'a string');
      const t = field<{ choices: string[]; labels: number[] }>(
        row,
        task === 'truthfulqa_mc1' ? 'mc1_targets' : 'mc2_targets',
        where,
        (v) => !!v && isStrArr((v as Row).choices) && Array.isArray((v as Row).labels),
        '{choices, labels}',
      );
      return mk(`${TRUTHFULQA_PRIMER}\n\nQ: ${q}\nA:`, t.choices, 0, t.labels);
    }
    case 'winogrande': {
      const s = field<string>(row, 'sentence', where, isStr, 'a string');
      const opts = [
        field<string>(row, 'option1', where, isStr, 'a string'),
        field<string>(row, 'option2', where, isStr, 'a string'),
      ];
      const answer = Number(row.answer);
      if (answer !== 1 && answer !== 2)
        throw new Error(
          `${where}: field 'answer' must be 1 or 2, got ${JSON.stringify(row.answer)}`,
        );
      const idx = s.indexOf('_');
      if (idx < 0) throw new Error(`${where}: field 'sentence' has no '_' blank`);
      // Partial evaluation: the context differs per option, the continuation is shared.
      const continuation = ` ${s.slice(idx + 1).trim()}`;
      return {
        requests: opts.map((o) => ({ context: fewshot + s.slice(0, idx) + o, continuation })),
        choices: opts,
        gold: answer - 1,
      };
    }
  }
}

/** The few-shot string for a document: k solved examples joined with the "\n\n" delimiter. */
export function fewshotContext(
  task: Exclude<TaskName, 'gsm8k'>,
  examples: readonly Row[],
  where: string,
): string {
  return examples
    .map((row, i) => {
      const d = mcDoc(task, row, `${where} few-shot ${i}`);
      const r = d.requests[d.gold]!;
      return r.context + r.continuation;
    })
    .map((s) => `${s}\n\n`)
    .join('');
}

export function gsm8kDoc(row: Row, where: string, fewshot = ''): GenDoc {
  const q = field<string>(row, 'question', where, isStr, 'a string');
  const a = field<string>(row, 'answer', where, isStr, 'a string');
  const m = /#### (-?[0-9.,]+)/.exec(a);
  if (!m) throw new Error(`${where}: field 'answer' has no '#### <number>' final answer`);
  return { context: `${fewshot}Question: ${q}\nAnswer:`, target: m[1]!.replace(/,/g, '') };
}

/** GSM8K answer extraction: "strict-match" (`#### n`) and "flexible-extract" (the last number). */
export function extractGsm8k(text: string): { strict: string | null; flexible: string | null } {
  const strict = /#### (-?[0-9.,]+)/.exec(text)?.[1]?.replace(/,/g, '') ?? null;
  const nums = text.match(/(-?[$0-9.,]{2,})|(-?[0-9]+)/g);
  const last = nums?.at(-1)?.replace(/[$,]/g, '').replace(/\.$/, '') ?? null;
  return { strict, flexible: last };
}
