import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  alignOutputs,
  leaderboardCsv,
  readModelOutputs,
  writeAnnotations,
  writeModelOutputs,
} from './files.js';

describe('AlpacaEval files', () => {
  it('round-trips model outputs, aligns by instruction, and names bad inputs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-eval-'));
    const model = [
      { instruction: 'b', output: 'B!', generator: 'm' },
      { instruction: 'a', output: 'A!', generator: 'm' },
    ];
    await writeModelOutputs(join(dir, 'model_outputs.json'), model);
    expect(await readModelOutputs(join(dir, 'model_outputs.json'))).toEqual(model);
    const ref = [
      { instruction: 'a', output: 'ref a', generator: 'r' },
      { instruction: 'b', output: 'ref b', generator: 'r' },
    ];
    expect(alignOutputs(model, ref)).toEqual({
      instructions: ['b', 'a'],
      outputs: ['B!', 'A!'],
      references: ['ref b', 'ref a'],
    });
    expect(() => alignOutputs(model, ref.slice(0, 1))).toThrow(
      /instruction "b" has no reference output \(the instruction sets differ\)/,
    );
    expect(() => alignOutputs(model.slice(0, 1), ref)).toThrow(
      /reference instruction "a" has no model output/,
    );
    await writeFile(join(dir, 'bad.json'), JSON.stringify([{ instruction: 'x' }]));
    await expect(readModelOutputs(join(dir, 'bad.json'))).rejects.toThrow(
      /bad.json: entry 0: field 'output' is missing or not a string/,
    );
    await writeAnnotations(join(dir, 'annotations.json'), [
      {
        instruction: 'a',
        output_1: 'r',
        output_2: 'm',
        generator_1: 'r',
        generator_2: 'm',
        preference: Number.NaN,
        switched: true,
        raw_completion: '??',
        annotator: 'x',
      },
    ]);
    expect(
      JSON.parse(await readFile(join(dir, 'annotations.json'), 'utf8'))[0].preference,
    ).toBeNull();
  });

  it('writes the leaderboard CSV with AlpacaEval’s columns', () => {
    const csv = leaderboardCsv([
      {
        name: 'tiny-dpo',
        win_rate: 62.5,
        standard_error: 4.1,
        n_wins: 10,
        n_wins_base: 5,
        n_draws: 1,
        n_total: 16,
        avg_length: 80,
      },
    ]);
    expect(csv).toBe(
      ',win_rate,standard_error,n_wins,n_wins_base,n_draws,n_total,avg_length,length_controlled_winrate,lc_standard_error\ntiny-dpo,62.5,4.1,10,5,1,16,80,,\n',
    );
  });
});
