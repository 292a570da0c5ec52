// 16-bit float conversions done on the CPU: IEEE binary16 (f16) and bfloat16
// (bf16), both with round-to-nearest-even from f32, keeping NaN a NaN
// (quiet), infinities, signed zeros and subnormals.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 bits of `x` (after rounding `x` to f32). */
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** Rounds `x` to the nearest binary16, ties to even; returns the 16 bits. */
export function f32ToF16Bits(x: number): number {
  const b = bitsOf(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0); // inf / NaN (kept quiet)
  const e = exp - 127 + 15; // biased f16 exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // Subnormal (or zero) in f16: shift the full significand into place.
    if (e < -10) return sign; // below half the smallest subnormal -> 0
    const full = man | 0x800000;
    const shift = 14 - e; // 24-bit significand to a 10-bit subnormal field
    const half = 1 << (shift - 1);
    const rest = full & ((1 << shift) - 1);
    let out = full >>> shift;
    if (rest > half || (rest === half && (out & 1))) out += 1; // may carry into the smallest normal: correct
    return sign | out;
  }
  let out = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out += 1; // a carry may round up to inf: correct
  return sign | out;
}

/** The value of binary16 bits `h`. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Rounds `x` to the nearest bfloat16, ties to even; returns the 16 bits. */
export function f32ToBf16Bits(x: number): number {
  const b = bitsOf(x);
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) return ((b >>> 16) | 0x40) & 0xffff; // NaN stays quiet NaN
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff; // ties to even; overflow rounds to inf by carry
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function toF16Array(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

export function fromF16Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToF32(src[i]);
  return out;
}

export function toBf16Array(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}

export function fromBf16Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16BitsToF32(src[i]);
  return out;
}

/** `src` rounded through a 16-bit dtype and back (what the device will see). */
export function roundThrough(dtype: 'f16' | 'bf16', src: Float32Array): Float32Array {
  return dtype === 'f16' ? fromF16Array(toF16Array(src)) : fromBf16Array(toBf16Array(src));
}
