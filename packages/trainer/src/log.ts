import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** One optimizer step as the loop reports it. */
export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  metrics: Record<string, number>;
  seconds: number;
}

/** Where a run reports: a JSONL metrics file always; a progress bar on a TTY, JSONL lines otherwise. */
export interface Logger {
  event(e: Record<string, unknown>): void;
  step(r: StepRecord, total: number): void;
  progress(label: string, done: number, total: number): void;
  done(): void;
}

function fmt(v: number | undefined): string {
  return v === undefined
    ? '–'
    : Math.abs(v) >= 100 || (Math.abs(v) < 1e-3 && v !== 0)
      ? v.toExponential(2)
      : v.toFixed(4);
}

/**
 * `file`: the JSONL metrics file (one object per step and per event), created at the first
 * write (a run that fails validation leaves no output directory). `mode`: `auto` draws a
 * progress bar when stderr is a TTY, and prints JSONL to stdout when stdout is not a TTY
 * (`alignjs train > log.jsonl` from a terminal gets both); `quiet` writes the file only.
 */
export function makeLogger(file: string | undefined, mode: 'auto' | 'quiet' = 'auto'): Logger {
  const tty = mode === 'auto' && Boolean(process.stderr.isTTY);
  const jsonlToStdout = mode === 'auto' && !process.stdout.isTTY;
  const started = performance.now();
  let made = false;
  const write = (obj: Record<string, unknown>) => {
    const line = JSON.stringify({ time: new Date().toISOString(), ...obj });
    if (file) {
      if (!made) mkdirSync(dirname(file), { recursive: true });
      made = true;
      appendFileSync(file, `${line}\n`);
    }
    if (jsonlToStdout) process.stdout.write(`${line}\n`);
  };
  let barShown = false;
  const bar = (label: string, done: number, total: number, extra = '') => {
    if (!tty) return;
    const width = 24;
    const frac = total ? done / total : 1;
    const elapsed = (performance.now() - started) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : 0;
    const filled = Math.round(frac * width);
    process.stderr.write(
      `\r${label} [${'█'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ETA ${eta.toFixed(0)}s ${extra}\x1b[K`,
    );
    barShown = true;
  };
  return {
    event: (e) => write(e),
    step: (r, total) => {
      write({
        event: 'step',
        step: r.step,
        epoch: r.epoch,
        loss: r.loss,
        lr: r.lr,
        grad_norm: r.gradNorm,
        seconds: r.seconds,
        ...r.metrics,
      });
      const m = r.metrics;
      bar(
        'train',
        r.step,
        total,
        `loss ${fmt(r.loss)} margin ${fmt(m['rewards/margins'])} acc ${fmt(m['rewards/accuracies'])}`,
      );
    },
    progress: (label, done, total) => {
      if (tty) bar(label, done, total);
      else if (done === total) write({ event: 'progress', label, done, total });
    },
    done: () => {
      if (barShown) process.stderr.write('\n');
      barShown = false;
    },
  };
}
