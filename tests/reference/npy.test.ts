// .npy reading and writing: round trips, numpy-written bytes, and every kind
// of bad file giving one clear NpyError that names the file.
import { describe, expect, it } from 'vitest';
import { NpyError, readNpy, toFloat32, toInt32, writeNpy } from '../../src/runtime/npy.ts';

/** Builds a .npy by hand (the way numpy lays it out) from a header dict and payload. */
function npy(dict: string, payload: Uint8Array, major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  let header = dict;
  const total = Math.ceil((prefix + header.length + 1) / 64) * 64;
  header = header.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(prefix + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  out.set(payload, prefix + header.length);
  return out;
}
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('npy', () => {
  it('round-trips f32 and i32 with their shapes', () => {
    const f = Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
    const rf = readNpy(writeNpy(f, [2, 3, 4]), 'q.npy');
    expect(rf.dtype).toBe('f32');
    expect(rf.shape).toEqual([2, 3, 4]);
    expect(Array.from(rf.data as Float32Array)).toEqual(Array.from(f));
    const i = Int32Array.from([5, -1, 2147483647, -2147483648]);
    const ri = readNpy(writeNpy(i, [4]), 'doc.npy');
    expect(ri.dtype).toBe('i32');
    expect(ri.shape).toEqual([4]);
    expect(Array.from(ri.data as Int32Array)).toEqual(Array.from(i));
    const s = readNpy(writeNpy(Float32Array.of(7), []), 'scalar.npy');
    expect(s.shape).toEqual([]);
    expect(s.data[0]).toBe(7);
  });

  it('writes the header as numpy does (64-byte aligned data, newline-terminated)', () => {
    const b = writeNpy(new Float32Array(6), [2, 3]);
    const headerLen = new DataView(b.buffer).getUint16(8, true);
    expect((10 + headerLen) % 64).toBe(0);
    const header = new TextDecoder('latin1').decode(b.subarray(10, 10 + headerLen));
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(writeNpy(new Int32Array(3), [3]).length).toBe(128 + 12);
    expect(() => writeNpy(new Float32Array(5), [2, 3])).toThrow(NpyError);
  });

  it('reads f64, f16, i64 and format 2.0/3.0, and converts with toFloat32/toInt32', () => {
    const f64 = readNpy(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", bytesOf(Float64Array.of(1.5, -2, 1e-3)), 2), 'x.npy');
    expect(f64.dtype).toBe('f64');
    expect(Array.from(toFloat32(f64))).toEqual(Array.from(Float32Array.of(1.5, -2, 1e-3)));
    // f16: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 0x0001, -inf 0xfc00
    const f16 = readNpy(npy("{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }", bytesOf(Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0xfc00)), 3), 'h.npy');
    expect(f16.dtype).toBe('f16');
    expect(Array.from(toFloat32(f16))).toEqual([1, -2, 65504, 2 ** -24, -Infinity]);
    const i64 = readNpy(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }", bytesOf(BigInt64Array.of(3n, -4n))), 'doc.npy');
    expect(i64.shape).toEqual([2, 1]);
    expect(Array.from(toInt32(i64))).toEqual([3, -4]);
    const huge = readNpy(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", bytesOf(BigInt64Array.of(1n << 40n))), 'doc.npy');
    expect(() => toInt32(huge, 'doc.npy')).toThrow(/doc\.npy: value 1099511627776 at index 0 does not fit in int32/);
    expect(() => toFloat32(huge, 'q.npy')).toThrow(/q\.npy: expected a float array/);
  });

  it('reads a file from numpy with odd alignment of the input bytes', () => {
    const file = writeNpy(Float32Array.of(1, 2, 3), [3]);
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const r = readNpy(shifted.subarray(1), 'odd.npy');
    expect(Array.from(r.data as Float32Array)).toEqual([1, 2, 3]);
    // A Node Buffer (what readFileSync returns) is a view into a shared pool,
    // and its slice() does not copy.
    const pooled = Buffer.concat([Buffer.from('xyz'), Buffer.from(file)]).subarray(3);
    expect(Array.from(readNpy(pooled, 'buf.npy').data as Float32Array)).toEqual([1, 2, 3]);
  });

  const f4 = bytesOf(Float32Array.of(1, 2, 3, 4, 5, 6));
  const bad: [string, Uint8Array, RegExp][] = [
    ['bad magic', new TextEncoder().encode('PK\x03\x04 this is a zip file'), /^k\.npy: not a \.npy file \(bad magic/],
    ['empty file', new Uint8Array(0), /k\.npy: not a \.npy file/],
    ['truncated data', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4.subarray(0, 20)), /k\.npy: the data is truncated: shape \(2, 3\) needs 24 bytes but the file has 20\.$/],
    ['extra data', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", f4), /k\.npy: shape\/size mismatch/],
    ['truncated header', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4).subarray(0, 30), /k\.npy: the file is truncated inside its header/],
    ['Fortran order', npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4), /k\.npy: the array is stored in Fortran order/],
    ['big-endian', npy("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", f4), /k\.npy: unsupported dtype '>f4': big-endian/],
    ['complex', npy("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", f4), /k\.npy: unsupported dtype '<c8'/],
    ['unsigned bytes', npy("{'descr': '|u1', 'fortran_order': False, 'shape': (24,), }", f4), /unsupported dtype '\|u1'/],
    ['structured dtype', npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", f4), /k\.npy: bad header: no string 'descr'/],
    ['not a dict', npy("['descr', '<f4']", f4), /k\.npy: bad header \(expected a Python dict literal\)/],
    ['no shape', npy("{'descr': '<f4', 'fortran_order': False, }", f4), /k\.npy: bad header: no 'shape' tuple/],
    ['bad shape', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", f4), /k\.npy: bad header: shape \(2, -3\)/],
    ['bad version', (() => { const b = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4); b[6] = 4; return b; })(), /k\.npy: unsupported \.npy format version 4\.0/],
  ];
  for (const [what, bytes, message] of bad) {
    it(`rejects ${what} with a NpyError naming the file`, () => {
      let err: unknown;
      try {
        readNpy(bytes, 'k.npy');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NpyError);
      expect((err as Error).message).toMatch(message);
      // One sentence: ends with a period, no newline.
      expect((err as Error).message).toMatch(/^[^\n]*\.$/);
    });
  }
});
