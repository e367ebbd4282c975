/** The CLI a person uses: help on every command, --version, unknown and bad flags refused before any work. */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from './cli.js';
import { COMMANDS } from './flags.js';

const captured = () => {
  let text = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    text += String(s);
    return true;
  });
  return { text: () => text, spy };
};
afterEach(() => vi.restoreAllMocks());

describe('alignjs CLI', () => {
  it('answers --help for every command without doing its work, and --version', async () => {
    for (const cmd of Object.keys(COMMANDS)) {
      const out = captured();
      // serve --help must not start a server, demo --help must not run the demo
      expect(await main([cmd, '--help']), cmd).toBe(0);
      expect(out.text(), cmd).toMatch(new RegExp(`^alignjs ${cmd} — `));
      for (const flag of Object.keys(COMMANDS[cmd]!.flags)) expect(out.text(), cmd).toContain(flag);
      out.spy.mockRestore();
    }
    const top = captured();
    expect(await main(['--help'])).toBe(0);
    for (const cmd of Object.keys(COMMANDS)) expect(top.text()).toContain(cmd);
    top.spy.mockRestore();
    const v = captured();
    expect(await main(['--version'])).toBe(0);
    expect(v.text()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('refuses unknown commands and flags, bad numbers and missing values, writing nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-cli-'));
    const judge = [
      'judge',
      '--model-outputs',
      'm.json',
      '--reference-outputs',
      'r.json',
      '--base-url',
      'http://127.0.0.1:1/v1',
      '--judge-model',
      'j',
      '--output',
      dir,
    ];
    const cases: [string[], RegExp][] = [
      [['trian'], /unknown command 'trian'; did you mean 'train'\?/],
      [['train', '--confg', 'x.yaml'], /train: unknown flag --confg; did you mean '--config'\?/],
      [['train'], /train needs --config FILE/],
      [[...judge, '--concurrency', '0'], /judge: --concurrency must be an integer >= 1, got '0'/],
      [
        ['harness', '--task', 'arc_easy', '--limit', 'abc'],
        /harness: --limit must be an integer >= 1, got 'abc'/,
      ],
      [
        ['serve', '--port', '70000'],
        /serve: --port must be an integer >= 0 and <= 65535, got '70000'/,
      ],
      [['generate', '--instructions'], /generate: --instructions needs a value/],
      [['demo', 'quick'], /demo: unexpected argument 'quick'/],
    ];
    for (const [argv, re] of cases) await expect(main(argv), argv.join(' ')).rejects.toThrow(re);
    expect(await readdir(dir)).toEqual([]);
  });
});
