/**
 * AlpacaEval's position randomization: `random.Random("is_switched_outputs" + instruction
 * + "0").choices([False, True])[0]`, ported exactly (CPython's str seeding: the big-endian
 * integer of utf8(s) ‖ sha512(utf8(s)) fed to MT19937 `init_by_array`).
 */
import { createHash } from 'node:crypto';
import { PyRandom } from './py-random.js';

/** `random.Random(seed).random()` for a str seed, as CPython computes it. */
export function pythonRandomForString(seed: string): number {
  const bytes = Buffer.from(seed, 'utf8');
  let all = Buffer.concat([bytes, createHash('sha512').update(bytes).digest()]);
  let start = 0;
  while (start < all.length - 1 && all[start] === 0) start++;
  all = all.subarray(start);
  // 32-bit words of the big-endian integer, least significant first.
  const key: number[] = [];
  for (let end = all.length; end > 0; end -= 4) {
    const from = Math.max(0, end - 4);
    let w = 0;
    for (let k = from; k < end; k++) w = (w * 256 + all[k]!) >>> 0;
    key.push(w);
  }
  return new PyRandom(key).random();
}

/** Whether AlpacaEval shows this instruction's outputs in swapped order. */
export function isSwitched(instruction: string, seed = 0): boolean {
  return pythonRandomForString(`is_switched_outputs${instruction}${seed}`) >= 0.5;
}
