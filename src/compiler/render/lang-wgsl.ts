// WGSL's table for the C-style renderer. WGSL lacks log1p, has a tanh that
// some drivers compute as a ratio of exponentials (NaN for large |x|), and
// leaves integer division by zero and pow of negative bases to us: helpers
// give the DSL's semantics (typing.ts) on every device.
import { f32Digits, INFIX, type CLanguage } from './cstyle.ts';

const helpers: Record<string, string> = {
  attnc_f32_bits: `fn attnc_f32_bits(bits: u32) -> f32 {
  return bitcast<f32>(bits);
}`,
  attnc_log1p: `fn attnc_log1p(x: f32) -> f32 {
  // log(1 + x) without the cancellation of 1 + x for small x.
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  if (u > 3.0e38) { return log(u); }
  return log(u) * x / (u - 1.0);
}`,
  attnc_tanh: `fn attnc_tanh(x: f32) -> f32 {
  // tanh saturates in f32 beyond |x| = 9; clamping avoids inf/inf.
  return tanh(clamp(x, -10.0, 10.0));
}`,
  attnc_sigmoid: `fn attnc_sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}`,
  attnc_idiv: `fn attnc_idiv(a: i32, b: i32) -> i32 {
  // Truncated division; a zero divisor gives 0 (the DSL's rule).
  if (b == 0i) { return 0i; }
  if (b == -1i) { return 0i - a; }
  return a / b;
}`,
  attnc_mod: `fn attnc_mod(a: i32, b: i32) -> i32 {
  // Remainder with the sign of the dividend; a zero divisor gives 0.
  if (b == 0i || b == -1i) { return 0i; }
  return a % b;
}`,
  attnc_pow: `fn attnc_pow(x: f32, y: f32) -> f32 {
  // pow as C's powf: negative bases allowed for integral exponents.
  if (y == 0.0) { return 1.0; }
  if (x > 0.0) { return pow(x, y); }
  if (x == 0.0) { return select(attnc_f32_bits(0x7f800000u), 0.0, y > 0.0); }
  if (floor(y) != y) { return attnc_f32_bits(0x7fc00000u); }
  let r = pow(-x, y);
  return select(r, -r, floor(y * 0.5) * 2.0 != y);
}`,
  attnc_sign_f32: `fn attnc_sign_f32(x: f32) -> f32 {
  return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
}`,
  attnc_sign_i32: `fn attnc_sign_i32(x: i32) -> i32 {
  return select(select(0i, -1i, x < 0i), 1i, x > 0i);
}`,
};

function literal(value: number | boolean, type: string): string {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (type === 'i32') return value === -2147483648 ? '(-2147483647i - 1i)' : value < 0 ? `(${value}i)` : `${value}i`;
  // WGSL const-evaluates bitcast of a literal and rejects non-finite results,
  // so these go through a (non-const) user function.
  if (Number.isNaN(value)) return 'attnc_f32_bits(0x7fc00000u)';
  if (value === Infinity) return 'attnc_f32_bits(0x7f800000u)';
  if (value === -Infinity) return 'attnc_f32_bits(0xff800000u)';
  const s = f32Digits(value);
  return value < 0 || Object.is(value, -0) ? `(${Object.is(value, -0) ? '-0.0' : s})` : s;
}

export const WGSL: CLanguage = {
  name: 'wgsl',
  type: { f32: 'f32', i32: 'i32', bool: 'bool' },
  literal,
  declare: (name, _type, expr) => `let ${name} = ${expr};`,
  unary(op, a, type) {
    switch (op) {
      case 'neg': return `(-${a})`;
      case 'not': return `(!${a})`;
      case 'exp': case 'exp2': case 'log': case 'log2': case 'sqrt': case 'abs': case 'floor': case 'ceil':
        return `${op}(${a})`;
      case 'rsqrt': return `inverseSqrt(${a})`;
      case 'log1p': return `attnc_log1p(${a})`;
      case 'tanh': return `attnc_tanh(${a})`;
      case 'sigmoid': return `attnc_sigmoid(${a})`;
      case 'sign': return type === 'i32' ? `attnc_sign_i32(${a})` : `attnc_sign_f32(${a})`;
    }
  },
  cast: (a, _from, to) => `${to}(${a})`,
  binary(op, a, b) {
    switch (op) {
      case 'mod': return `attnc_mod(${a}, ${b})`;
      case 'idiv': return `attnc_idiv(${a}, ${b})`;
      case 'min': return `min(${a}, ${b})`;
      case 'max': return `max(${a}, ${b})`;
      case 'pow': return `attnc_pow(${a}, ${b})`;
      default: return `(${a} ${INFIX[op]} ${b})`;
    }
  },
  select: (c, a, b) => `select(${b}, ${a}, ${c})`,
  helpers,
};
