// f32 <-> f16 / bf16 conversions of the runtime (round to nearest, ties to even).
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/runtime/half.ts';
import { mangle } from '../../src/compiler/render/names.ts';

describe('f16', () => {
  it('round-trips every finite f16 exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
    }
  });
  it('rounds to nearest, ties to even', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (down)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds to inf
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // half the smallest subnormal: tie -> 0
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(1);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });
});

describe('bf16', () => {
  it('rounds to nearest, ties to even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1); // tie -> even
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    expect(bf16BitsToF32(f32ToBf16Bits(3.4e38))).toBe(Infinity);
  });
});

describe('WGSL name mangling', () => {
  it('never pastes a name that could clash', () => {
    expect(mangle('p', 'tau')).toBe('p_tau');
    expect(mangle('p', 'var')).toBe('p_var');
    expect(mangle('p', '__x')).toBe('px_5f5f78');
    expect(mangle('t', 'a__b')).toMatch(/^tx_[0-9a-f]+$/);
  });
});
