// CUDA-C's table for the C-style renderer. Single-precision libm functions
// (expf, log1pf, ...) compiled WITHOUT --use_fast_math, so a user's transform
// keeps full f32 accuracy; the softmax itself uses exp2 explicitly (cuda.ts).
import { f32Digits, INFIX, type CLanguage } from './cstyle.ts';

/** min or max of t[clamp(i, 0, n - 1)] over i in lo..hi, for tile tests only. */
function tableRange(name: 'tmin' | 'tmax', op: 'min' | 'max'): string {
  return `template <typename T>
__device__ __forceinline__ T attnc_${name}(const T* __restrict__ t, int lo, int hi, int n) {
  // ${op} of t[clamp(i, 0, n - 1)] over i in lo..hi (hi < lo: t[clamp(lo)]); tile tests only.
  // Warp-cooperative: every lane of the warp calls it with the same range (tile
  // tests are uniform per block), reads a strided share, and the warp reduces.
  const int a = attnc_clampi(lo, n), b = attnc_clampi(max(lo, hi), n);
  T v = t[a];
  for (int i = a + (int)(threadIdx.x & 31u); i <= b; i += 32) v = ${op}(v, t[i]);
  for (int o = 16; o > 0; o >>= 1) v = ${op}(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}`;
}

/**
 * min and max of t[clamp(i, 0, n - 1)] over i in lo..hi by ONE thread (the
 * per-thread tile test: lanes scan different tiles). Same values as attnc_tmin
 * / attnc_tmax over the same range. The loads of a batch are unconditional
 * (indices clamped into the range, so a repeated element changes nothing) and
 * come before their first use, so their latencies overlap: one round trip per
 * batch of g (a constant after inlining, at most 16) 16-byte loads when t is
 * 16-byte aligned (the aligned groups of 4 inside the range; the up to 3 + 3
 * elements outside them scalar), 16 scalar loads per batch otherwise.
 */
const TRANGE1 = `__device__ __forceinline__ void attnc_trange1(const int* __restrict__ t, int lo, int hi, int n, int g, int& mn, int& mx) {
  // min and max of t[clamp(i, 0, n - 1)] over i in lo..hi (hi < lo: t[clamp(lo)]), by one thread.
  const int a = attnc_clampi(lo, n), b = attnc_clampi(max(lo, hi), n);
  g = min(max(g, 1), 16);  // 16-byte loads per batch
  int vmin = t[a], vmax = vmin;
  if ((reinterpret_cast<unsigned long long>(t) & 15ull) == 0ull) {
    const int a4 = (a + 3) & ~3, ng = max(b + 1 - a4, 0) >> 2;  // groups t[a4 + 4k .. a4 + 4k + 3], k < ng, inside a..b
    const int4* __restrict__ p = reinterpret_cast<const int4*>(t + a4);
    for (int k0 = 0; k0 < ng; k0 += g) {
      int4 v[16];
      #pragma unroll
      for (int k = 0; k < 16; ++k) if (k < g) v[k] = p[min(k0 + k, ng - 1)];
      #pragma unroll
      for (int k = 0; k < 16; ++k) if (k < g) {
        vmin = min(vmin, min(min(v[k].x, v[k].y), min(v[k].z, v[k].w)));
        vmax = max(vmax, max(max(v[k].x, v[k].y), max(v[k].z, v[k].w)));
      }
    }
    if (((a | (b + 1)) & 3) != 0) {  // a..a4-1 and a4+4*ng..b: at most 3 each (ng == 0: a..b, at most 6)
      int x[6];
      #pragma unroll
      for (int k = 0; k < 3; ++k) { x[k] = t[min(a + k, b)]; x[3 + k] = t[max(b - k, a)]; }
      #pragma unroll
      for (int k = 0; k < 6; ++k) { vmin = min(vmin, x[k]); vmax = max(vmax, x[k]); }
    }
  } else {
    for (int i0 = a; i0 <= b; i0 += 16) {
      int x[16];
      #pragma unroll
      for (int k = 0; k < 16; ++k) x[k] = t[min(i0 + k, b)];
      #pragma unroll
      for (int k = 0; k < 16; ++k) { vmin = min(vmin, x[k]); vmax = max(vmax, x[k]); }
    }
  }
  mn = vmin;
  mx = vmax;
}`;

const tableRange1 = (name: 'tmin1' | 'tmax1', which: 'mn' | 'mx') => `__device__ __forceinline__ int attnc_${name}(const int* __restrict__ t, int lo, int hi, int n) {
  int mn, mx;
  attnc_trange1(t, lo, hi, n, 8, mn, mx);
  return ${which};
}`;

const helpers: Record<string, string> = {
  attnc_idiv: `__device__ __forceinline__ int attnc_idiv(int a, int b) {
  // Truncated division; a zero divisor gives 0 (the DSL's rule).
  return b == 0 ? 0 : (b == -1 ? (int)(0u - (unsigned)a) : a / b);
}`,
  attnc_mod: `__device__ __forceinline__ int attnc_mod(int a, int b) {
  // Remainder with the sign of the dividend; a zero divisor gives 0.
  return (b == 0 || b == -1) ? 0 : a % b;
}`,
  attnc_tmin: tableRange('tmin', 'min'),
  attnc_tmax: tableRange('tmax', 'max'),
  attnc_trange1: TRANGE1,
  attnc_tmin1: tableRange1('tmin1', 'mn'),
  attnc_tmax1: tableRange1('tmax1', 'mx'),
  attnc_sigmoid: `__device__ __forceinline__ float attnc_sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}`,
  attnc_sign_f32: `__device__ __forceinline__ float attnc_sign_f32(float x) {
  return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
}`,
  attnc_sign_i32: `__device__ __forceinline__ int attnc_sign_i32(int x) {
  return x > 0 ? 1 : (x < 0 ? -1 : 0);
}`,
};

function literal(value: number | boolean, type: string): string {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (type === 'i32') return value === -2147483648 ? '(-2147483647 - 1)' : value < 0 ? `(${value})` : `${value}`;
  if (Number.isNaN(value)) return '__int_as_float(0x7fc00000)';
  if (value === Infinity) return '__int_as_float(0x7f800000)';
  if (value === -Infinity) return '__int_as_float(0xff800000)';
  const s = `${Object.is(value, -0) ? '-0.0' : f32Digits(value)}f`;
  return value < 0 || Object.is(value, -0) ? `(${s})` : s;
}

const F32_FN: Record<string, string> = {
  exp: 'expf', exp2: 'exp2f', log: 'logf', log2: 'log2f', log1p: 'log1pf', sqrt: 'sqrtf', rsqrt: 'rsqrtf',
  tanh: 'tanhf', abs: 'fabsf', floor: 'floorf', ceil: 'ceilf',
};

export const CUDA: CLanguage = {
  name: 'cuda',
  type: { f32: 'float', i32: 'int', bool: 'bool' },
  literal,
  declare: (name, type, expr) => `const ${type === 'f32' ? 'float' : type === 'i32' ? 'int' : 'bool'} ${name} = ${expr};`,
  unary(op, a, type) {
    switch (op) {
      case 'neg': return `(-${a})`;
      case 'not': return `(!${a})`;
      case 'abs': return type === 'i32' ? `abs(${a})` : `fabsf(${a})`;
      case 'sigmoid': return `attnc_sigmoid(${a})`;
      case 'sign': return type === 'i32' ? `attnc_sign_i32(${a})` : `attnc_sign_f32(${a})`;
      default: return `${F32_FN[op]}(${a})`;
    }
  },
  cast: (a, _from, to) => (to === 'f32' ? `(float)(${a})` : to === 'i32' ? `(int)(${a})` : `(bool)(${a})`),
  binary(op, a, b, argType) {
    switch (op) {
      case 'mod': return `attnc_mod(${a}, ${b})`;
      case 'idiv': return `attnc_idiv(${a}, ${b})`;
      case 'min': return argType === 'i32' ? `min(${a}, ${b})` : `fminf(${a}, ${b})`;
      case 'max': return argType === 'i32' ? `max(${a}, ${b})` : `fmaxf(${a}, ${b})`;
      case 'pow': return `powf(${a}, ${b})`;
      default: return `(${a} ${INFIX[op]} ${b})`;
    }
  },
  select: (c, a, b) => `(${c} ? ${a} : ${b})`,
  helpers,
};
