/**
 * AlpacaEval's position randomization: `random.Random("is_switched_outputs" + instruction
 * + "0").choices([False, True])[0]`, ported exactly (CPython's str seeding: the big-endian
 * integer of utf8(s) ‖ sha512(utf8(s)) fed to MT19937 `init_by_array`).
 */
import { createHash } from 'node:crypto';

class MT19937 {
  private mt = new Uint32Array(624);
  private i = 625;

  private initGenrand(s: number): void {
    this.mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) {
      const p = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      this.mt[i] = (Math.imul(1812433253, p) + i) >>> 0;
    }
    this.i = 624;
  }

  initByArray(key: readonly number[]): void {
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    const mt = this.mt;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const p = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(p, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const p = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(p, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  int32(): number {
    const mt = this.mt;
    if (this.i >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.i = 0;
    }
    let y = mt[this.i++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** CPython's random(): 53-bit float from two draws. */
  random(): number {
    const a = this.int32() >>> 5;
    const b = this.int32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

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
  const mt = new MT19937();
  mt.initByArray(key);
  return mt.random();
}

/** Whether AlpacaEval shows this instruction's outputs in swapped order. */
export function isSwitched(instruction: string, seed = 0): boolean {
  return pythonRandomForString(`is_switched_outputs${instruction}${seed}`) >= 0.5;
}
