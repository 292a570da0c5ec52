// Python/PyTorch's table for the C-style renderer, used by the flex target
// (FlexAttention score_mod / mask_mod). Inside those functions every index
// and size is a 0-dim or broadcast int32 tensor, so operators act on
// tensors; helpers give the DSL's integer semantics (typing.ts), which
// differ from Python's floor division and modulo.
import { f32Digits, type CLanguage } from './cstyle.ts';

const helpers: Record<string, string> = {
  _idiv: `def _idiv(a, b):
    # Truncated division; a zero divisor gives 0 (the DSL's rule).
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    safe = torch.where(b == 0, 1, b)
    return torch.where(b == 0, 0, torch.div(a, safe, rounding_mode="trunc"))`,
  _mod: `def _mod(a, b):
    # Remainder with the sign of the dividend; a zero divisor gives 0.
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    safe = torch.where(b == 0, 1, b)
    return torch.where(b == 0, 0, torch.fmod(a, safe))`,
  _min: `def _min(a, b):
    return torch.minimum(torch.as_tensor(a), torch.as_tensor(b))`,
  _max: `def _max(a, b):
    return torch.maximum(torch.as_tensor(a), torch.as_tensor(b))`,
  _not: `def _not(a):
    return torch.logical_not(torch.as_tensor(a))`,
  _and: `def _and(a, b):
    return torch.logical_and(torch.as_tensor(a), torch.as_tensor(b))`,
  _or: `def _or(a, b):
    return torch.logical_or(torch.as_tensor(a), torch.as_tensor(b))`,
  _f32: `def _f32(a):
    return torch.as_tensor(a).to(torch.float32)`,
};

function literal(value: number | boolean, type: string): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (type === 'i32') return value < 0 ? `(${value})` : `${value}`;
  if (Number.isNaN(value)) return 'float("nan")';
  if (value === Infinity) return 'float("inf")';
  if (value === -Infinity) return 'float("-inf")';
  const s = Object.is(value, -0) ? '-0.0' : f32Digits(value);
  return value < 0 || Object.is(value, -0) ? `(${s})` : s;
}

const TORCH_FN: Record<string, string> = {
  exp: 'torch.exp', exp2: 'torch.exp2', log: 'torch.log', log2: 'torch.log2', log1p: 'torch.log1p', sqrt: 'torch.sqrt',
  rsqrt: 'torch.rsqrt', tanh: 'torch.tanh', sigmoid: 'torch.sigmoid', abs: 'torch.abs', sign: 'torch.sign',
  floor: 'torch.floor', ceil: 'torch.ceil',
};

export const PYTHON: CLanguage = {
  name: 'python',
  type: { f32: 'torch.float32', i32: 'torch.int32', bool: 'torch.bool' },
  literal,
  declare: (name, _type, expr) => `${name} = ${expr}`,
  unary(op, a) {
    if (op === 'neg') return `(-${a})`;
    if (op === 'not') return `_not(${a})`;
    // abs and sign keep integers integral; the rest are real functions.
    if (op === 'abs' || op === 'sign') return `${TORCH_FN[op]}(torch.as_tensor(${a}))`;
    return `${TORCH_FN[op]}(_f32(${a}))`;
  },
  cast: (a, _from, to) => (to === 'f32' ? `_f32(${a})` : `torch.as_tensor(${a}).to(${to === 'i32' ? 'torch.int32' : 'torch.bool'})`),
  binary(op, a, b) {
    switch (op) {
      case 'mod': return `_mod(${a}, ${b})`;
      case 'idiv': return `_idiv(${a}, ${b})`;
      case 'min': return `_min(${a}, ${b})`;
      case 'max': return `_max(${a}, ${b})`;
      case 'pow': return `torch.pow(_f32(${a}), ${b})`;
      case 'and': return `_and(${a}, ${b})`;
      case 'or': return `_or(${a}, ${b})`;
      case 'add': return `(${a} + ${b})`;
      case 'sub': return `(${a} - ${b})`;
      case 'mul': return `(${a} * ${b})`;
      case 'div': return `(${a} / ${b})`;
      case 'lt': return `(${a} < ${b})`;
      case 'le': return `(${a} <= ${b})`;
      case 'gt': return `(${a} > ${b})`;
      case 'ge': return `(${a} >= ${b})`;
      case 'eq': return `(${a} == ${b})`;
      case 'ne': return `(${a} != ${b})`;
    }
  },
  select: (c, a, b) => `torch.where(${c}, ${a}, ${b})`,
  helpers,
};
