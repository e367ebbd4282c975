import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  buildBatch,
  buildCrossBatch,
  buildMultiBatch,
  buildPairwiseBatch,
  crossRow,
  SEGMENT,
  sharedFirstToken,
  splitPairwise,
  toCrossMatrix,
  toMultiMatrix,
  truncateExample,
} from './batch.js';
import { expectClose, expectNoLeaks } from './testing.js';

const rows = (a: Int32Array, T: number) =>
  Array.from({ length: a.length / T }, (_, b) => Array.from(a.slice(b * T, (b + 1) * T)));

describe('buildBatch', () => {
  it('right-pads with segments marking prompt and response', () => {
    const d = buildBatch(
      [
        { prompt: [1, 2], response: [3] },
        { prompt: [1], response: [4, 5, 6] },
      ],
      { padTokenId: 9 },
    );
    expect(d.seqLen).toBe(4);
    expect(rows(d.inputIds, 4)).toEqual([
      [1, 2, 3, 9],
      [1, 4, 5, 6],
    ]);
    expect(rows(d.attentionMask, 4)).toEqual([
      [1, 1, 1, 0],
      [1, 1, 1, 1],
    ]);
    const { pad: O, prompt: P, response: R } = SEGMENT;
    expect(rows(d.segments, 4)).toEqual([
      [P, P, R, O],
      [P, R, R, R],
    ]);
  });

  it('left-pads for generation', () => {
    const d = buildBatch(
      [
        { prompt: [1, 2], response: [3] },
        { prompt: [1], response: [4, 5, 6] },
      ],
      { padTokenId: 0, padding: 'left' },
    );
    expect(rows(d.inputIds, 4)[0]).toEqual([0, 1, 2, 3]);
    expect(rows(d.attentionMask, 4)[0]).toEqual([0, 1, 1, 1]);
  });

  it('allows an empty prompt when the response has two or more tokens', () => {
    const d = buildBatch([{ prompt: [], response: [4, 5] }], { padTokenId: 0 });
    expect(Array.from(d.segments)).toEqual([SEGMENT.response, SEGMENT.response]);
    expect(d.promptLengths).toEqual([0]);
  });

  it('rejects empty responses and rows that leave nothing to score', () => {
    expect(() =>
      buildBatch(
        [
          { prompt: [1], response: [2] },
          { prompt: [1], response: [] },
        ],
        { padTokenId: 0 },
      ),
    ).toThrow(/example 1: empty response/);
    expect(() => buildBatch([{ prompt: [], response: [2] }], { padTokenId: 0 })).toThrow(
      /example 0: empty prompt and a one-token response/,
    );
    expect(() => buildBatch([{ prompt: [1.5], response: [2] }], { padTokenId: 0 })).toThrow(
      /example 0: prompt token id 1.5/,
    );
    expect(() =>
      buildBatch([{ prompt: [1], response: [2] }], { padTokenId: 0, maxLength: 0 }),
    ).toThrow(/maxLength must be an integer >= 1/);
    expect(() => buildBatch([], { padTokenId: 0 })).toThrow(/no examples/);
  });

  it('truncates like TRL: prompt keeps its end, response keeps its start', () => {
    const ex = { prompt: [1, 2, 3, 4, 5], response: [6, 7, 8, 9] };
    expect(truncateExample(ex, { maxPromptLength: 3 })).toEqual({
      prompt: [3, 4, 5],
      response: [6, 7, 8, 9],
      truncated: true,
    });
    expect(
      truncateExample(ex, { maxPromptLength: 3, truncationMode: 'keep_start' }).prompt,
    ).toEqual([1, 2, 3]);
    expect(truncateExample(ex, { maxPromptLength: 3, maxLength: 5 })).toEqual({
      prompt: [3, 4, 5],
      response: [6, 7],
      truncated: true,
    });
    // Prompt alone fills maxLength: the response still keeps one token.
    expect(truncateExample(ex, { maxLength: 4 })).toEqual({
      prompt: [3, 4, 5],
      response: [6],
      truncated: true,
    });
    expect(truncateExample(ex, { maxLength: 20 }).truncated).toBe(false);
    const d = buildBatch([ex], { padTokenId: 0, maxLength: 4 });
    expect(d.truncated).toEqual([true]);
    expect(d.responseLengths).toEqual([1]);
  });
});

describe('pairwise, cross and multi layouts', () => {
  it('concatenates chosen rows then rejected rows and splits them back', () => {
    const d = buildPairwiseBatch(
      [
        { prompt: [1], chosen: [2, 3], rejected: [4] },
        { prompt: [1, 5], chosen: [6], rejected: [7, 8, 9] },
      ],
      { padTokenId: 0 },
    );
    expect(d.batchSize).toBe(4);
    expect(rows(d.inputIds, d.seqLen)).toEqual([
      [1, 2, 3, 0, 0],
      [1, 5, 6, 0, 0],
      [1, 4, 0, 0, 0],
      [1, 5, 7, 8, 9],
    ]);
    const t = tf.tensor1d([0, 1, 2, 3]);
    const { chosen, rejected } = expectNoLeaks(() => splitPairwise(t));
    expect(Array.from(chosen.dataSync())).toEqual([0, 1]);
    expect(Array.from(rejected.dataSync())).toEqual([2, 3]);
    tf.dispose([t, chosen, rejected]);
  });

  it('builds the B×B cross batch with row i·B + j = (prompt i, response j)', () => {
    const d = buildCrossBatch(
      [
        { prompt: [1], response: [10, 11] },
        { prompt: [2, 3], response: [12] },
      ],
      { padTokenId: 0 },
    );
    expect(d.batchSize).toBe(4);
    const r = rows(d.inputIds, d.seqLen);
    expect(r[crossRow(0, 1, 2)]).toEqual([1, 12, 0, 0]);
    expect(r[crossRow(1, 0, 2)]).toEqual([2, 3, 10, 11]);
    const m = toCrossMatrix(tf.tensor1d([0, 1, 2, 3]));
    expect(m.arraySync()).toEqual([
      [0, 1],
      [2, 3],
    ]);
    m.dispose();
  });

  it('maps multi-response rows into [B, K] with a mask for ragged K', () => {
    const d = buildMultiBatch(
      [
        { prompt: [1], responses: [[2], [3], [4]] },
        { prompt: [1, 5], responses: [[6]] },
      ],
      { padTokenId: 0 },
    );
    expect(d.k).toBe(3);
    expect(Array.from(d.mask)).toEqual([1, 1, 1, 1, 0, 0]);
    const v = tf.tensor1d([10, 20, 30, 40]);
    const g = tf.grad((x: tf.Tensor) =>
      tf.sum(
        tf.mul(
          toMultiMatrix(x as tf.Tensor1D, d),
          tf.tensor2d([
            [1, 2, 3],
            [4, 5, 6],
          ]),
        ),
      ),
    )(v);
    const m = expectNoLeaks(() => toMultiMatrix(v, d));
    expect(m.arraySync()).toEqual([
      [10, 20, 30],
      [40, 0, 0],
    ]);
    expectClose(g.dataSync(), [1, 2, 3, 4]);
    tf.dispose([v, m, g]);
  });

  it('finds the shared first prompt token RAO needs, or names the row that differs', () => {
    const ok = buildBatch(
      [
        { prompt: [7, 1], response: [2] },
        { prompt: [7], response: [3, 4] },
      ],
      { padTokenId: 0, padding: 'left' },
    );
    expect(sharedFirstToken(ok)).toBe(7);
    const bad = buildBatch(
      [
        { prompt: [7, 1], response: [2] },
        { prompt: [8], response: [3] },
      ],
      { padTokenId: 0 },
    );
    expect(() => sharedFirstToken(bad)).toThrow(
      /row 1: prompt starts with token 8 but row 0 starts with 7/,
    );
  });
});
