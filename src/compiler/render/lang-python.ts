// Python/PyTorch's table for the C-style renderer, used by the flex target
// (FlexAttention score_mod / mask_mod). Inside those functions every index,
// size and param is a tensor (flex passes the indices; sizes and params are
// captured 0-dim tensors) and constant subexpressions are folded, so only
// literals are Python numbers. Nothing here creates a tensor: FlexAttention's
// compiler cannot lower tensor constructors inside score_mod. Helpers give
// the DSL's integer semantics (typing.ts), which differ from Python's floor
// division and modulo.
import { f32Digits, type CLanguage } from './cstyle.ts';

const helpers: Record<string, string> = {
  _idiv: `def _idiv(a, b):
    # Truncated division; a zero divisor gives 0 (the DSL's rule).
    if not isinstance(b, torch.Tensor):
        return a * 0 if b == 0 else torch.div(a, b, rounding_mode="trunc")
    safe = torch.where(b == 0, 1, b)
    return torch.where(b == 0, 0, torch.div(a, safe, rounding_mode="trunc"))`,
  _mod: `def _mod(a, b):
    # Remainder with the sign of the dividend; a zero divisor gives 0.
    if not isinstance(b, torch.Tensor):
        return a * 0 if b == 0 else torch.fmod(a, b)
    safe = torch.where(b == 0, 1, b)
    return torch.where(b == 0, 0, torch.fmod(a, safe))`,
  _min: `def _min(a, b):
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.minimum(a, b)
    return torch.clamp(a, max=b) if isinstance(a, torch.Tensor) else torch.clamp(b, max=a)`,
  _max: `def _max(a, b):
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.maximum(a, b)
    return torch.clamp(a, min=b) if isinstance(a, torch.Tensor) else torch.clamp(b, min=a)`,
  _f32: `def _f32(a):
    return a.to(torch.float32) if isinstance(a, torch.Tensor) else float(a)`,
  _index: `def _index(i, n):
    # Table reads clamp the index to the table (the DSL's rule).
    return torch.clamp(i, 0, n - 1) if isinstance(i, torch.Tensor) else min(max(i, 0), n - 1)`,
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
    if (op === 'not') return `torch.logical_not(${a})`;
    // abs and sign keep integers integral; the rest are real functions.
    if (op === 'abs' || op === 'sign') return `${TORCH_FN[op]}(${a})`;
    return `${TORCH_FN[op]}(_f32(${a}))`;
  },
  cast: (a, _from, to) => (to === 'f32' ? `_f32(${a})` : `(${a}).to(${to === 'i32' ? 'torch.int32' : 'torch.bool'})`),
  binary(op, a, b) {
    switch (op) {
      case 'mod': return `_mod(${a}, ${b})`;
      case 'idiv': return `_idiv(${a}, ${b})`;
      case 'min': return `_min(${a}, ${b})`;
      case 'max': return `_max(${a}, ${b})`;
      case 'pow': return `torch.pow(_f32(${a}), ${b})`;
      case 'and': return `(${a} & ${b})`;
      case 'or': return `(${a} | ${b})`;
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
