import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheKey, RefLogpCache, writeFileAtomic } from './cache.js';

const dir = () => mkdtemp(join(tmpdir(), 'alignjs-cache-'));

describe('reference log-prob cache', () => {
  it('round-trips entries and cross matrices through an atomic file', async () => {
    const path = join(await dir(), 'ref.json');
    const c = await RefLogpCache.open(path, 'tiny@abc');
    const k = cacheKey('tiny@abc', { prompt: [1, 2], response: [3] });
    c.set(k, { responseSum: -3.5, responseLength: 1, promptSum: -1, promptLength: 1 });
    c.setCross('batch-0', [
      [-1, -2],
      [-3, -4],
    ]);
    await c.save();
    expect((await readdir(join(path, '..'))).filter((f) => f.includes('.tmp'))).toEqual([]);
    const again = await RefLogpCache.open(path, 'tiny@abc');
    expect(again.size).toBe(1);
    expect(again.get(k)).toEqual({
      responseSum: -3.5,
      responseLength: 1,
      promptSum: -1,
      promptLength: 1,
    });
    expect(again.getCross('batch-0')).toEqual([
      [-1, -2],
      [-3, -4],
    ]);
  });

  it('keys change with the tokens and the reference identity', () => {
    const a = cacheKey('m1', { prompt: [1], response: [2] });
    expect(cacheKey('m1', { prompt: [1], response: [2] })).toBe(a);
    expect(cacheKey('m2', { prompt: [1], response: [2] })).not.toBe(a);
    expect(cacheKey('m1', { prompt: [1], response: [3] })).not.toBe(a);
  });

  it('refuses a foreign, corrupt or stale cache with a clear error', async () => {
    const d = await dir();
    const path = join(d, 'ref.json');
    const c = await RefLogpCache.open(path, 'model-a');
    c.set('k1', { responseSum: -1, responseLength: 1 });
    await c.save();
    await expect(RefLogpCache.open(path, 'model-b')).rejects.toThrow(
      /computed for 'model-a', not 'model-b'/,
    );
    const reopened = await RefLogpCache.open(path, 'model-a');
    expect(() => reopened.require('k2')).toThrow(/stale reference cache: no entry/);
    expect(() => reopened.set('k3', { responseSum: Number.NaN, responseLength: 1 })).toThrow(
      /not finite/,
    );
    await writeFile(join(d, 'bad.json'), '{"format":"x"}');
    await expect(RefLogpCache.open(join(d, 'bad.json'), 'model-a')).rejects.toThrow(
      /not a reference cache/,
    );
    await writeFile(join(d, 'v9.json'), '{"format":"alignjs-ref-cache","version":9}');
    await expect(RefLogpCache.open(join(d, 'v9.json'), 'model-a')).rejects.toThrow(
      /version 9 is not supported/,
    );
    await writeFile(join(d, 'trunc.json'), '{"format":"alignjs-ref-c');
    await expect(RefLogpCache.open(join(d, 'trunc.json'), 'model-a')).rejects.toThrow(
      /invalid JSON/,
    );
  });

  it('a crash before the rename leaves the previous file intact', async () => {
    const d = await dir();
    const path = join(d, 'out.json');
    await writeFileAtomic(path, 'old');
    // A writer that died mid-write leaves only its temp file; the target is untouched.
    await writeFile(`${path}.tmp-999-1`, 'half-writ');
    expect(await readFile(path, 'utf8')).toBe('old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
  });
});
