// NumPy `.npy` files (format 1.0, 2.0, 3.0; C order, little-endian), the
// exchange format of `attnc check`/`run` for Q, K, V, tables and outputs.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// Reading copies the payload into a fresh, aligned buffer, so the result never
// aliases (or depends on the alignment of) the caller's bytes. Every problem
// with a file is an NpyError whose message is one sentence naming the file.

export type NpyDtype = 'f32' | 'i32' | 'f64' | 'f16' | 'i64';

/** f16 payloads are widened to Float32Array (Node 20 has no Float16Array). */
export type NpyData = Float32Array | Int32Array | Float64Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

export class NpyError extends Error {
  override name = 'NpyError';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** descr (after the byte-order character) -> our dtype and its item size. */
const DESCRS: Record<string, { dtype: NpyDtype; size: number }> = {
  f4: { dtype: 'f32', size: 4 },
  i4: { dtype: 'i32', size: 4 },
  f8: { dtype: 'f64', size: 8 },
  f2: { dtype: 'f16', size: 2 },
  i8: { dtype: 'i64', size: 8 },
};

export function readNpy(bytes: Uint8Array, what: string): NpyArray {
  const fail = (problem: string): never => {
    throw new NpyError(`${what}: ${problem}.`);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail('not a .npy file (bad magic; expected the bytes "\\x93NUMPY" at the start)');
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('the file is truncated inside its header');
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    return fail(`unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) fail('the file is truncated inside its header');
  // 1.0/2.0 headers are latin1, 3.0 is utf8; the fields we need are ASCII.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const { descr, fortran, shape } = parseHeader(header, fail);

  if (fortran) fail('the array is stored in Fortran order (save it with np.ascontiguousarray first)');
  const order = descr[0];
  const kind = DESCRS[descr.slice(1)];
  if (order === '>') fail(`unsupported dtype '${descr}': big-endian data (convert with arr.astype('<${descr.slice(1)}'))`);
  if ((order !== '<' && order !== '|' && order !== '=') || !kind) {
    fail(`unsupported dtype '${descr}' (expected float32, int32, float64, float16 or int64, little-endian)`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * kind.size;
  const have = bytes.length - dataStart;
  if (have < need) fail(`the data is truncated: shape (${shape.join(', ')}) needs ${need} bytes but the file has ${have}`);
  if (have > need) fail(`shape/size mismatch: shape (${shape.join(', ')}) needs ${need} bytes but the file has ${have}`);

  // Copy into an aligned buffer (the header length does not guarantee
  // alignment of `bytes.byteOffset + dataStart`). Typed arrays use the host
  // byte order, little-endian on every platform Node supports in practice.
  // Copy explicitly: a Node Buffer's slice() is a view into a shared pool.
  const copy = new Uint8Array(need);
  copy.set(bytes.subarray(dataStart, dataStart + need));
  const buf = copy.buffer;
  switch (kind.dtype) {
    case 'f32': return { dtype: 'f32', shape, data: new Float32Array(buf) };
    case 'i32': return { dtype: 'i32', shape, data: new Int32Array(buf) };
    case 'f64': return { dtype: 'f64', shape, data: new Float64Array(buf) };
    case 'i64': return { dtype: 'i64', shape, data: new BigInt64Array(buf) };
    case 'f16': return { dtype: 'f16', shape, data: halfToFloat32(new Uint16Array(buf)) };
  }
}

/** Parses the Python dict literal of the header, e.g.
 *  {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
function parseHeader(header: string, fail: (p: string) => never): { descr: string; fortran: boolean; shape: number[] } {
  const h = header.trim();
  if (!h.startsWith('{') || !h.endsWith('}')) fail('bad header (expected a Python dict literal)');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(h);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)\b/.exec(h);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(h);
  if (!descr) fail("bad header: no string 'descr' (a structured dtype is not supported)");
  if (!fortran) fail("bad header: no 'fortran_order' True/False");
  if (!shape) fail("bad header: no 'shape' tuple");
  const parts = shape![1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  const dims = parts.map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : NaN));
  if (dims.some((d) => !Number.isSafeInteger(d))) fail(`bad header: shape (${shape![1]}) is not a tuple of non-negative integers`);
  return { descr: descr![1], fortran: fortran![1] === 'True', shape: dims };
}

/** IEEE binary16 -> float32, exact (every half is a float). */
function halfToFloat32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const x = h[i];
    const sign = x & 0x8000 ? -1 : 1;
    const exp = (x >> 10) & 0x1f;
    const frac = x & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24; // zero and subnormals
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Writes a C-order, little-endian .npy (format 1.0, or 2.0 for huge headers). */
export function writeNpy(array: Float32Array | Int32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0) || count !== array.length) {
    throw new NpyError(`writeNpy: shape (${shape.join(', ')}) does not match ${array.length} elements.`);
  }
  const descr = array instanceof Float32Array ? '<f4' : '<i4';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so that the data starts at a multiple of 64 bytes, and
  // end the header with '\n', as numpy does.
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  dict = dict.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(total + array.byteLength);
  out.set(MAGIC, 0);
  out[6] = prefix === 10 ? 1 : 2;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (prefix === 10) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), total);
  return out;
}

/** Accepts f32/f64/f16 arrays (e.g. a float64 .npy from numpy's defaults) as Float32Array. */
export function toFloat32(arr: NpyArray, what = 'array'): Float32Array {
  if (arr.dtype === 'f32' || arr.dtype === 'f16') return arr.data as Float32Array;
  if (arr.dtype === 'f64') return Float32Array.from(arr.data as Float64Array);
  throw new NpyError(`${what}: expected a float array but it has dtype ${arr.dtype}.`);
}

/** Accepts i32 and i64 arrays (numpy's default integer is int64) as Int32Array. */
export function toInt32(arr: NpyArray, what = 'array'): Int32Array {
  if (arr.dtype === 'i32') return arr.data as Int32Array;
  if (arr.dtype === 'i64') {
    const src = arr.data as BigInt64Array;
    const out = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v < -2147483648n || v > 2147483647n) throw new NpyError(`${what}: value ${v} at index ${i} does not fit in int32.`);
      out[i] = Number(v);
    }
    return out;
  }
  throw new NpyError(`${what}: expected an integer array but it has dtype ${arr.dtype}.`);
}
