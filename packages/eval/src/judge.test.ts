// The judge client against a scripted judge server on 127.0.0.1 that injects faults.
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { winRate } from './alpaca.js';
import {
  AnnotationCache,
  annotatePairwise,
  PAIRWISE_PROMPT_VERSION,
  pairwisePrompt,
} from './annotate.js';
import { getAnnotator, type PairwiseAnnotator } from './annotators/index.js';
import { BudgetExceededError, JudgeClient } from './judge.js';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** Faults by instruction: the first attempt of each scripted one misbehaves. */
async function startJudge(): Promise<{ url: string; calls: Map<string, number> }> {
  const calls = new Map<string, number>();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const msg = JSON.parse(body).messages[1].content as string;
      const instruction = /Instruction:\n"""([\s\S]*?)"""/.exec(msg)![1]!;
      const n = (calls.get(instruction) ?? 0) + 1;
      calls.set(instruction, n);
      const first = /Answer m:\n"""([\s\S]*?)"""/.exec(msg)![1]!;
      const reply = (content: string) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content } }] }));
      };
      if (instruction === 'rate-limited' && n === 1) {
        res.writeHead(429, { 'retry-after': '0' });
        res.end('slow down');
      } else if (instruction === 'server-error' && n === 1) {
        res.writeHead(500);
        res.end('boom');
      } else if (instruction === 'hangs' && n === 1) {
        // never answer: the client's timeout must fire
      } else if (instruction === 'malformed') {
        reply('Both answers are fine.');
      } else {
        reply(first.includes('GOOD') ? 'm' : 'M');
      }
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1`, calls };
}

const instructions = ['rate-limited', 'server-error', 'hangs', 'malformed', 'plain', 'identical'];
const outputs = instructions.map((i) => (i === 'identical' ? 'same' : `GOOD answer to ${i}`));
const references = instructions.map((i) => (i === 'identical' ? 'same' : `weak answer to ${i}`));
const judgeOptions = (url: string) => ({
  baseUrl: url,
  model: 'scripted',
  timeoutMs: 300,
  backoffMs: 5,
  maxBackoffMs: 20,
  concurrency: 3,
});

describe('judge client and pairwise annotation', () => {
  it('survives 429, 500, a hang and malformed output; counts are right; a rerun asks only the unparsed one again', async () => {
    const { url, calls } = await startJudge();
    const cache = await AnnotationCache.open(
      join(await mkdtemp(join(tmpdir(), 'alignjs-judge-')), 'cache.json'),
    );
    const judge = new JudgeClient(judgeOptions(url));
    const run = await annotatePairwise(
      { instructions, outputs, references, generator: 'model', referenceGenerator: 'ref' },
      judge,
      cache,
    );
    expect(run.annotations.map((a) => a.preference)).toEqual([2, 2, 2, Number.NaN, 2, 1.5]);
    expect(run.unparsed).toBe(1);
    expect(run.requests).toBe(8); // 5 judged instructions + 3 retries; identical outputs need no call
    expect(judge.stats.retries).toBe(3);
    expect(calls.get('identical')).toBeUndefined();
    expect(winRate(run.annotations.map((a) => a.preference)).win_rate).toBe(90);
    // Every instruction's order follows AlpacaEval's switching and is recorded.
    expect(run.annotations.some((a) => a.switched)).toBe(true);
    const rerunJudge = new JudgeClient(judgeOptions(url));
    const again = await annotatePairwise(
      { instructions, outputs, references, generator: 'model', referenceGenerator: 'ref' },
      rerunJudge,
      await AnnotationCache.open(cache.path),
    );
    // the malformed answer is not trusted from the cache: asked again (and malformed again)
    expect(again.requests).toBe(1);
    expect(again.cacheHits).toBe(4);
    expect(again.unparsed).toBe(1);
    expect(again.annotations.map((a) => a.preference)).toEqual(
      run.annotations.map((a) => a.preference),
    );
    const file = JSON.parse(await readFile(cache.path, 'utf8'));
    expect(Object.keys(file.entries).length).toBe(5);
  });

  it('a request budget stops the run with a clear error and keeps what was judged', async () => {
    const { url } = await startJudge();
    const path = join(await mkdtemp(join(tmpdir(), 'alignjs-judge-')), 'cache.json');
    const plainOnly = {
      instructions: ['a', 'b', 'c', 'd'],
      outputs: ['GOOD a', 'GOOD b', 'GOOD c', 'GOOD d'],
      references: ['x', 'y', 'z', 'w'],
      generator: 'm',
      referenceGenerator: 'r',
    };
    const judge = new JudgeClient({ ...judgeOptions(url), concurrency: 1, requestBudget: 2 });
    await expect(
      annotatePairwise(plainOnly, judge, await AnnotationCache.open(path)),
    ).rejects.toBeInstanceOf(BudgetExceededError);
    const resumed = await annotatePairwise(
      plainOnly,
      new JudgeClient(judgeOptions(url)),
      await AnnotationCache.open(path),
    );
    expect(resumed.cacheHits).toBe(2);
    expect(resumed.requests).toBe(2);
  });

  it('an unreachable judge is a clear error after the retries', async () => {
    const judge = new JudgeClient({
      baseUrl: 'http://127.0.0.1:9/v1',
      model: 'none',
      timeoutMs: 200,
      maxRetries: 2,
      backoffMs: 1,
    });
    await expect(judge.chat([{ role: 'user', content: 'hi' }])).rejects.toThrow(
      /judge request failed after 3 attempts/,
    );
    const bad = new JudgeClient({
      baseUrl: 'http://127.0.0.1:9/v1',
      model: 'none',
      fetchImpl: async () => new Response('nope', { status: 401 }),
    });
    await expect(bad.chat([{ role: 'user', content: 'hi' }])).rejects.toThrow(
      /judge request failed: HTTP 401/,
    );
    expect(bad.stats.requests).toBe(1);
  });
});

describe('pairwise annotators', () => {
  it("a custom annotator's prompt and parser are used, named in the annotations; unknown names fail", async () => {
    const { url } = await startJudge();
    const cache = await AnnotationCache.open(
      join(await mkdtemp(join(tmpdir(), 'alignjs-judge-')), 'cache.json'),
    );
    // the scripted judge answers 'm' when the answer it sees first contains GOOD; this
    // annotator shows the answers in the other order and reads 'm' as "second is better"
    const swapped: PairwiseAnnotator = {
      name: 'test-swapped',
      prompt: (instruction, first, second) => pairwisePrompt(instruction, second, first),
      parse: (content) => (content.trim() === 'm' ? 2 : content.trim() === 'M' ? 1 : Number.NaN),
    };
    const run = await annotatePairwise(
      {
        instructions: ['plain', 'other'],
        outputs: ['GOOD one', 'GOOD two'],
        references: ['weak one', 'weak two'],
        generator: 'model',
        referenceGenerator: 'ref',
      },
      new JudgeClient(judgeOptions(url)),
      cache,
      swapped,
    );
    expect(run.annotations.map((a) => a.preference)).toEqual([2, 2]);
    expect(run.annotations.every((a) => a.annotator === 'test-swapped')).toBe(true);
    expect(getAnnotator('alignjs-pairwise-v1').name).toBe(PAIRWISE_PROMPT_VERSION);
    expect(() => getAnnotator('alignjs-pairwise-v2')).toThrow(
      /unknown annotator 'alignjs-pairwise-v2'.*did you mean 'alignjs-pairwise-v1'/,
    );
  });
});
