import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { winRate } from './alpaca.js';
import { JudgeClient } from './judge.js';
import {
  annotateLocal,
  bootstrapCI,
  judgeSingle,
  judgeTwoOrder,
  parseVerdict,
  scoreJudge,
} from './modes.js';

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/** A loopback judge: ratings from the answer's "score:N" tag; verdicts prefer answers containing GOOD. */
async function judgeServer(): Promise<string> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const msg = JSON.parse(body).messages[1].content as string;
      let content: string;
      if (msg.includes('[Question]')) {
        const tag = /score:(\d+)/.exec(msg);
        content = tag ? `Fine. Rating: [[${tag[1]}]]` : 'I cannot rate this.';
      } else {
        const a = /\[Answer A\]\n([\s\S]*?)\n\[End of answer A\]/.exec(msg)![1]!;
        const b = /\[Answer B\]\n([\s\S]*?)\n\[End of answer B\]/.exec(msg)![1]!;
        content =
          a.includes('TIE') || b.includes('TIE')
            ? 'Same. [[C]]'
            : a.includes('GOOD') && !b.includes('GOOD')
              ? 'A wins [[A]]'
              : b.includes('GOOD') && !a.includes('GOOD')
                ? '[[B]]'
                : 'no verdict';
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content } }] }));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1`;
}

describe('judge modes', () => {
  it('single-answer scores: parsed ratings, unparseable counted and left out of the mean', async () => {
    const judge = new JudgeClient({ baseUrl: await judgeServer(), model: 'j', timeoutMs: 5000 });
    const r = await judgeSingle(
      [
        { question: 'q1', answer: 'score:8' },
        { question: 'q2', answer: 'score:6' },
        { question: 'q3', answer: 'no tag' },
      ],
      judge,
    );
    expect(r.scores).toEqual([8, 6, -1]);
    expect(r.unparsed).toBe(1);
    expect(r.mean).toBe(7);
  });

  it('two-order rule: both orders judged and combined', async () => {
    const judge = new JudgeClient({ baseUrl: await judgeServer(), model: 'j', timeoutMs: 5000 });
    const r = await judgeTwoOrder(
      [
        { instruction: 'i1', model: 'GOOD answer', baseline: 'meh' },
        { instruction: 'i2', model: 'meh', baseline: 'GOOD answer' },
        { instruction: 'i3', model: 'TIE', baseline: 'x' },
        { instruction: 'i4', model: 'same', baseline: 'same too' },
      ],
      judge,
    );
    expect(r.outcomes).toEqual(['win', 'loss', 'tie', null]);
    expect([r.wins, r.ties, r.losses, r.unparsed]).toEqual([1, 1, 1, 1]);
    expect(judge.stats.requests).toBe(8);
    expect(parseVerdict('[[B]] but maybe [[A]]')).toBe('A');
  });

  it('local judges (a score function, e.g. a reward model) need no server', async () => {
    const score = (_: string, response: string) => response.length;
    const r = await annotateLocal(
      {
        instructions: ['a', 'b', 'c'],
        outputs: ['long answer', 'x', 'same'],
        references: ['short', 'longer', 'same'],
        generator: 'm',
        referenceGenerator: 'r',
      },
      scoreJudge(score),
    );
    expect(r.annotations.map((a) => a.preference)).toEqual([2, 1, 1.5]);
    expect(winRate(r.annotations.map((a) => a.preference)).win_rate).toBe(50);
    const bad = await annotateLocal(
      {
        instructions: ['a'],
        outputs: ['x'],
        references: ['y'],
        generator: 'm',
        referenceGenerator: 'r',
      },
      () => 7,
    );
    expect(bad.unparsed).toBe(1);
    expect(Number.isNaN(bad.annotations[0]!.preference)).toBe(true);
  });

  it('bootstrap intervals contain the mean and collapse for constant data', () => {
    const x = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const [lo, hi] = bootstrapCI(x, { seed: 1 });
    expect(lo).toBeLessThan(0.25);
    expect(hi).toBeGreaterThan(0.25);
    expect(hi - lo).toBeLessThan(0.15);
    expect(bootstrapCI([0.5, 0.5, 0.5])).toEqual([0.5, 0.5]);
    expect(bootstrapCI([1, 0, 1], { seed: 3 })).toEqual(bootstrapCI([1, 0, 1], { seed: 3 }));
  });
});

describe('evaluation report', () => {
  it('renders win rates, intervals, MT-Bench and benchmarks as Markdown and HTML', async () => {
    const { evaluationReport } = await import('./eval-report.js');
    const r = evaluationReport(
      'tiny models',
      [
        { name: 'dpo', winRate: 62.5, standardError: 4.2, ci: [54.1, 70.3], mtBench: 5.5 },
        { name: 'pro', winRate: 71.25, standardError: 3.9 },
      ],
      [{ model: 'dpo', task: 'arc_easy', metric: 'acc', value: 0.5, stderr: 0.1 }],
    );
    expect(r.markdown).toContain('| dpo   | 62.50    | 4.20 | 54.10–70.30 |');
    expect(r.markdown).toContain('arc_easy');
    expect(r.html).toContain('<svg');
    expect(r.html).toContain('71.25');
  });
});
