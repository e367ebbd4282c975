/**
 * Checkpoints and final outputs, written as the Hugging Face Trainer lays them out
 * (`checkpoint-<step>/` with the model files, `optimizer.safetensors`, `trainer_state.json`),
 * always atomically: a temp directory renamed into place. Shared by every trainer here.
 */
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import { loadSafetensors, saveSafetensors } from '@alignjs/models/node';
import type { Optimizer } from './optim.js';

/** Writes a directory atomically: `write(tmp)` fills a temp directory, then it replaces `dir`. */
export async function writeDirAtomic(
  dir: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  const old = `${dir}.old-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await write(tmp);
  const exists = await stat(dir).then(
    () => true,
    () => false,
  );
  if (exists) await rename(dir, old);
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}

/** The optimizer's moments as `optimizer.safetensors` (`m.<i>`, `v.<i>` per variable). */
export async function saveOptimizer(file: string, opt: Optimizer): Promise<void> {
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  const { m, v } = opt.moments();
  opt.vars.forEach((w, i) => {
    state.set(`m.${i}`, { shape: [...w.shape], data: m[i]! });
    state.set(`v.${i}`, { shape: [...w.shape], data: v[i]! });
  });
  await saveSafetensors(file, state);
}

/** Restores moments written by {@link saveOptimizer}, and the optimizer's step. */
export async function restoreOptimizer(file: string, opt: Optimizer, step: number): Promise<void> {
  const o = await loadSafetensors(file);
  const moment = (name: string) => {
    const t = o.get(name);
    if (!t) throw new Error(`${file}: missing tensor '${name}'`);
    return t.data as Float32Array;
  };
  opt.setMoments(
    opt.vars.map((_, i) => moment(`m.${i}`)),
    opt.vars.map((_, i) => moment(`v.${i}`)),
  );
  opt.step = step;
}

/** `trainer_state.json` of a checkpoint directory. */
export async function readTrainerState<T>(dir: string): Promise<T> {
  const file = join(dir, 'trainer_state.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${dir}: not a checkpoint directory (no trainer_state.json)`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

export async function writeTrainerState(dir: string, state: unknown): Promise<void> {
  await writeFileAtomic(join(dir, 'trainer_state.json'), JSON.stringify(state, null, 1));
}

/** `saveTotalLimit` (TRL `save_total_limit`): only the newest `limit` checkpoints stay (0 = all). */
export async function pruneCheckpoints(output: string, limit: number): Promise<void> {
  if (!limit) return;
  const steps = (await readdir(output))
    .map((f) => /^checkpoint-(\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  for (const step of steps.slice(0, Math.max(0, steps.length - limit)))
    await rm(join(output, `checkpoint-${step}`), { recursive: true, force: true });
}

/**
 * Leftovers of a crashed run in `output` — `checkpoint-N.tmp-PID` / `final.tmp-PID` (and
 * `.old-PID`) folders whose process is gone — are removed before training.
 */
export async function removeStaleTemp(output: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(output);
  } catch {
    return;
  }
  for (const f of names) {
    const m = /\.(?:tmp|old)-(\d+)$/.exec(f);
    if (!m || !/^(checkpoint-\d+|final)\./.test(f)) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
    }
    if (!alive) await rm(join(output, f), { recursive: true, force: true });
  }
}

/**
 * `metrics.jsonl` after a resume from step N: step, eval and checkpoint lines past N (written
 * by the run that was killed) are dropped, so no step appears twice. Written atomically.
 */
export async function truncateMetrics(file: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return;
  }
  const keep = text.split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      const r = JSON.parse(l) as { step?: unknown };
      return !(typeof r.step === 'number' && r.step > step);
    } catch {
      return false; // a line cut by the kill
    }
  });
  await writeFileAtomic(file, keep.length ? `${keep.join('\n')}\n` : '');
}
