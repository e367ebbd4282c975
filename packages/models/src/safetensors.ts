/**
 * safetensors, browser-safe: the header parsed and validated, tensors decoded one at a time
 * from a {@link ModelSource} (F16 and BF16 widened to float32), and serialization to bytes.
 * Format: 8-byte little-endian header length N, N bytes of JSON `{name: {dtype, shape,
 * data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data. The Node file API
 * (`loadSafetensors(path)`, `saveSafetensors(path, …)`, atomic writes) is in `./node`.
 */
import type { ModelSource } from './source.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** Header sizes past this are certainly not safetensors (the reference caps at 100 MB). */
const MAX_HEADER = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsHeader {
  /** the file as errors name it */
  path: string;
  /** the file's name in its source */
  file: string;
  source: ModelSource;
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

function fail(path: string, msg: string): never {
  throw new Error(`${path}: ${msg}`);
}

/** Reads and validates the header (and only the header) of `file` in `src`. */
export async function readHeaderFrom(src: ModelSource, file: string): Promise<SafetensorsHeader> {
  const path = src.where(file);
  const size = await src.size(file);
  if (size === undefined) fail(path, 'not found');
  if (size < 8)
    fail(path, `truncated safetensors file (${size} bytes, the header length alone needs 8)`);
  const lenBuf = await src.readRange(file, 0, 8);
  const n = Number(new DataView(lenBuf.buffer, lenBuf.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER)
    fail(path, `safetensors header length ${n} is implausible; not a safetensors file?`);
  if (8 + n > size)
    fail(
      path,
      `truncated safetensors file: header says ${n} bytes but the file has ${size - 8} after the length`,
    );
  const hBuf = await src.readRange(file, 8, 8 + n);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(hBuf)) as Record<string, unknown>;
  } catch (err) {
    fail(path, `safetensors header is not valid JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + n;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in BYTES)) {
      fail(
        path,
        `tensor '${name}': dtype ${JSON.stringify(e?.dtype)} is not supported (supported: F32, F16, BF16)`,
      );
    }
    const shape = e.shape as number[];
    const offs = e.data_offsets as number[];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(path, `tensor '${name}': bad shape ${JSON.stringify(e.shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !(offs[0]! <= offs[1]!)) {
      fail(path, `tensor '${name}': bad data_offsets ${JSON.stringify(e.data_offsets)}`);
    }
    const dtype = e.dtype as SafetensorsDtype;
    const expect = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (offs[1]! - offs[0]! !== expect) {
      fail(
        path,
        `tensor '${name}': ${offs[1]! - offs[0]!} bytes for shape [${shape}] ${dtype} (expected ${expect})`,
      );
    }
    if (dataStart + offs[1]! > size) {
      fail(
        path,
        `tensor '${name}': data_offsets [${offs}] point past the end of the file (${size - dataStart} data bytes)`,
      );
    }
    entries.set(name, {
      name,
      dtype,
      shape,
      begin: dataStart + offs[0]!,
      end: dataStart + offs[1]!,
    });
  }
  return { path, file, source: src, entries, metadata };
}

/** IEEE half → float32. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(buf: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const n = buf.length / BYTES[dtype];
  if (dtype === 'F32') {
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(buf);
    return out;
  }
  const u16 = new Uint16Array(n);
  new Uint8Array(u16.buffer).set(buf);
  if (dtype === 'BF16') {
    const u32 = new Uint32Array(n);
    for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16;
    return new Float32Array(u32.buffer);
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = halfToFloat(u16[i]!);
  return out;
}

/**
 * Reads tensors one at a time, calling `onTensor` for each (the caller uploads it to the
 * device and lets the host copy go), so peak host memory is one tensor.
 */
export async function readTensors(
  header: SafetensorsHeader,
  onTensor: (name: string, t: HostTensor) => void,
  names: Iterable<string> = header.entries.keys(),
): Promise<void> {
  for (const name of names) {
    const e = header.entries.get(name);
    if (!e) fail(header.path, `no tensor '${name}'`);
    const buf = await header.source.readRange(header.file, e.begin, e.end);
    if (buf.byteLength !== e.end - e.begin)
      fail(
        header.path,
        `tensor '${name}': file ended after ${buf.byteLength} of ${e.end - e.begin} bytes`,
      );
    onTensor(name, { shape: e.shape, data: decode(buf, e.dtype) });
  }
}

/** Every tensor of one safetensors file of `src`, as float32 host arrays. */
export async function readSafetensorsFrom(
  src: ModelSource,
  file: string,
): Promise<Map<string, HostTensor>> {
  const header = await readHeaderFrom(src, file);
  const out = new Map<string, HostTensor>();
  await readTensors(header, (name, t) => out.set(name, t));
  return out;
}

/** float32 tensors as safetensors bytes (names sorted), in pieces to write or concatenate. */
export function serializeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array[] {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const name of names) {
    const t = map.get(name)!;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length)
      throw new Error(
        `saveSafetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`,
      );
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + n * 4] };
    offset += n * 4;
  }
  header.__metadata__ = metadata;
  const enc = new TextEncoder();
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (enc.encode(json).byteLength % 8)) % 8);
  const hBuf = enc.encode(json);
  const lenBuf = new Uint8Array(8);
  new DataView(lenBuf.buffer).setBigUint64(0, BigInt(hBuf.byteLength), true);
  return [
    lenBuf,
    hBuf,
    ...names.map((name) => {
      const d = map.get(name)!.data;
      return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    }),
  ];
}

/** The safetensors files of a model: `model.safetensors` or the shards of its index. */
export async function modelWeightFilesFrom(
  src: ModelSource,
): Promise<{ files: string[]; index?: Record<string, string> }> {
  const indexFile = 'model.safetensors.index.json';
  const text = await src.read(indexFile);
  if (text !== undefined) {
    let idx: { weight_map?: Record<string, string> };
    try {
      idx = JSON.parse(new TextDecoder().decode(text)) as typeof idx;
    } catch (err) {
      throw new Error(`${src.where(indexFile)}: not valid JSON (${(err as Error).message})`);
    }
    if (!idx.weight_map || typeof idx.weight_map !== 'object')
      throw new Error(`${src.where(indexFile)}: missing field 'weight_map'`);
    return { files: [...new Set(Object.values(idx.weight_map))], index: idx.weight_map };
  }
  if ((await src.size('model.safetensors')) !== undefined) return { files: ['model.safetensors'] };
  throw new Error(
    `${src.name}: no model.safetensors or model.safetensors.index.json (only safetensors weights are supported)`,
  );
}
