/**
 * DPO (or RAO) on the built-in tiny model, in whatever runtime runs it: the browser page
 * (`main.ts`) and the Node side of the browser test call this same function, so their losses
 * can be compared step by step. Browser-safe: only alignjs root entries.
 */
import {
  buildBatch,
  type LayoutPlan,
  type Objective,
  planLayout,
  sequenceLogprobs,
  toTensors,
} from '@alignjs/core-logprob';
import { dpoObjective } from '@alignjs/loss-dpo';
import { raoObjective } from '@alignjs/loss-rao';
import { type CausalLM, generate, type HfTokenizer, TINY_TASK_WORDS } from '@alignjs/models';
import {
  AdamW,
  type Logger,
  loopSettings,
  parseDataset,
  parseTrainConfig,
  runLoop,
  type StepRecord,
  tokenizeDataset,
} from '@alignjs/trainer';
import * as tf from '@tensorflow/tfjs-core';

export const OBJECTIVES = { dpo: dpoObjective, rao: raoObjective } as const;
export type ObjectiveName = keyof typeof OBJECTIVES;

/** The demo task as JSONL: each prompt about a subject, a pleasant answer preferred to an unpleasant one (with the task's rewards). */
export function demoData(n = 16): string {
  const w = TINY_TASK_WORDS;
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = w.subjects[i % w.subjects.length]!;
    const user = w.prompts[i % w.prompts.length]!.replace('{s}', s);
    const say = (a: string) => `The ${s} is ${a}.`;
    rows.push(
      JSON.stringify({
        prompt: [{ role: 'user', content: user }],
        chosen: [{ role: 'assistant', content: say(w.positive[i % w.positive.length]!) }],
        rejected: [{ role: 'assistant', content: say(w.negative[(i + 3) % w.negative.length]!) }],
        // RAO weighs the responses by reward: the demo task's true reward (+1 pleasant, −1 not)
        score_chosen: 1,
        score_rejected: -1,
      }),
    );
  }
  return rows.join('\n');
}

export interface TrainOptions {
  objective: ObjectiveName;
  steps: number;
  batchSize?: number;
  learningRate?: number;
  /** called after every optimizer step */
  onStep?: (r: StepRecord) => void;
}

/** Greedy answers of the model to the first demo prompts (before/after training). */
export function sample(model: CausalLM, tok: HfTokenizer, prompts: string[]): string[] {
  const ids = prompts.map((p) =>
    tok.encode(
      tok.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }),
      {
        addSpecialTokens: false,
      },
    ),
  );
  const g = generate(model, ids, {
    greedy: true,
    maxNewTokens: 12,
    stopTokenIds: tok.eosTokenId !== undefined ? [tok.eosTokenId] : [],
    decode: (x) => tok.decode(x),
  });
  return g.texts!.map((t) => t.trim());
}

/**
 * Trains `model` in place: TRL 1.13 tokenization, fixed batches, reference log-probs of the
 * starting model, the trainer's own loop (AdamW, linear schedule, clipping at 1) and the
 * objective's loss. Returns the loss of every step.
 */
export async function train(
  model: CausalLM,
  tok: HfTokenizer,
  o: TrainOptions,
): Promise<StepRecord[]> {
  const objective = OBJECTIVES[o.objective] as Objective<unknown>;
  const objectiveConfig = objective.parseConfig({});
  const needs = objective.needs(objectiveConfig);
  // the trainer's own config parser: its defaults (AdamW betas, linear schedule, clipping at 1,
  // TRL 1.13's max_length 1024 / keep_start) are what `alignjs train` would use
  const cfg = parseTrainConfig(
    {
      train: 'demo.jsonl',
      output: 'browser',
      objective,
      batchSize: o.batchSize ?? 8,
      maxSteps: o.steps,
      learningRate: o.learningRate ?? 5e-4,
    },
    'browser demo',
  );
  const ds = parseDataset(demoData(), 'demo.jsonl');
  const { examples } = tokenizeDataset(ds, tok, {
    maxLength: cfg.maxLength ?? undefined,
    truncationMode: cfg.truncationMode,
  });
  const pad = tok.padTokenId ?? 0;
  const plans: LayoutPlan[] = [];
  for (let i = 0; i < examples.length; i += cfg.batchSize)
    plans.push(planLayout(examples.slice(i, i + cfg.batchSize), ds.kind, needs));
  const batches = plans.map((p) => toTensors(buildBatch(p.rows, { padTokenId: pad })));
  // reference: the starting model, scored once per batch before any update
  plans.forEach((p, i) => {
    const lp = sequenceLogprobs(model.call, batches[i]!, { noGrad: true });
    p.setReference({
      sum: lp.responseSum.dataSync() as Float32Array,
      prompt: lp.promptSum.dataSync() as Float32Array,
    });
    tf.dispose(Object.values(lp));
  });
  const vars = model.trainableVariables();
  const optimizer = new AdamW(vars, {
    beta1: cfg.adamBeta1,
    beta2: cfg.adamBeta2,
    eps: cfg.adamEpsilon,
    weightDecay: cfg.weightDecay,
  });
  const log: Logger = { event() {}, step() {}, progress() {}, done() {} };
  const state = { step: 0, epoch: 0, batchInEpoch: 0, history: [] as StepRecord[] };
  try {
    await runLoop(
      {
        ...loopSettings(cfg, plans.length),
        optimizer,
        log,
        microStep: (index) => {
          const lp = sequenceLogprobs(model.call, batches[index]!);
          const out = objective.loss(
            plans[index]!.assemble({ sum: lp.responseSum, prompt: lp.promptSum }),
            objectiveConfig,
          );
          return { loss: out.loss, metrics: out.metrics };
        },
        hooks: { onStep: (r) => o.onStep?.(r) },
      },
      state,
    );
  } finally {
    for (const b of batches) tf.dispose(Object.values(b));
    for (const p of plans) p.dispose();
    optimizer.dispose();
  }
  return state.history;
}
