import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  alpacaEvalCommand,
  isInstalled,
  lmEvalCommand,
  readLmEvalResults,
  requireTool,
} from './external.js';

describe('external harnesses', () => {
  it('builds lm_eval and alpaca_eval commands pointed at our server and files', () => {
    expect(
      lmEvalCommand({
        serverUrl: 'http://127.0.0.1:8000',
        modelId: 'tiny',
        tasks: ['arc_easy', 'hellaswag'],
        outputPath: 'out',
        numFewshot: 0,
        limit: 10,
      }),
    ).toEqual([
      'lm_eval',
      '--model',
      'local-completions',
      '--model_args',
      'model=tiny,base_url=http://127.0.0.1:8000/v1/completions,tokenized_requests=False',
      '--tasks',
      'arc_easy,hellaswag',
      '--output_path',
      'out',
      '--num_fewshot',
      '0',
      '--limit',
      '10',
    ]);
    expect(
      alpacaEvalCommand({ modelOutputs: 'm.json', referenceOutputs: 'r.json', outputPath: 'o' }),
    ).toEqual([
      'alpaca_eval',
      'evaluate',
      '--model_outputs',
      'm.json',
      '--reference_outputs',
      'r.json',
      '--output_path',
      'o',
    ]);
  });

  it('a missing tool is a clear error saying how to install it', () => {
    expect(isInstalled('sh')).toBe(true);
    if (!isInstalled('lm_eval'))
      expect(() => requireTool('lm_eval')).toThrow(
        'lm_eval is not installed (not on PATH); install it with: pip install "lm-eval[api]"',
      );
    if (!isInstalled('alpaca_eval'))
      expect(() => requireTool('alpaca_eval')).toThrow(/alpaca_eval is not installed/);
  });

  it('reads lm_eval’s results file back from its nested output folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-ext-'));
    await mkdir(join(dir, 'tiny'), { recursive: true });
    await writeFile(
      join(dir, 'tiny', 'results_2026-11-22T10-00-00.json'),
      JSON.stringify({ results: { arc_easy: { 'acc,none': 0.5 } } }),
    );
    expect(await readLmEvalResults(dir)).toEqual({ results: { arc_easy: { 'acc,none': 0.5 } } });
    await expect(readLmEvalResults(join(dir, 'tiny', '..', 'tiny'))).resolves.toBeTruthy();
  });
});
