// The DSL's typing rules, in one place. The checker reports their failures as
// diagnostics, the IR lowering and the float64 reference follow the same rules,
// so a spec means one thing everywhere.
//
//   + - *          i32,i32 -> i32 (32-bit wrapping); any f32 operand -> f32
//   /              numbers -> f32 (always real division: 7 / 2 is 3.5)
//   %              i32,i32 -> i32 (truncated, sign of the dividend; x % 0 = 0)
//   < <= > >=      numbers -> bool
//   == !=          two numbers or two bools -> bool
//   && || !        bools -> bool
//   unary -        number -> same type
//   if c then a else b   c bool; a, b both bool, or numbers (mixed -> f32)
//   exp exp2 log log2 log1p sqrt rsqrt tanh sigmoid floor ceil pow -> f32
//   abs sign       keep i32 or f32
//   min max clamp  all i32 -> i32, else f32
//   idiv(a, b)     i32,i32 -> i32 (truncated toward zero; idiv(a, 0) = 0)
//   table[i]       i must be i32; clamped to the table; gives the table's type
import type { BinaryOp, ValueType } from './ast.ts';

export type TypeResult = { ok: true; type: ValueType } | { ok: false; expected: string };

const isNumber = (t: ValueType) => t === 'i32' || t === 'f32';
const promote = (a: ValueType, b: ValueType): ValueType => (a === 'i32' && b === 'i32' ? 'i32' : 'f32');

export function binaryType(op: BinaryOp, l: ValueType, r: ValueType): TypeResult {
  switch (op) {
    case '+': case '-': case '*':
      return isNumber(l) && isNumber(r) ? { ok: true, type: promote(l, r) } : { ok: false, expected: 'numbers' };
    case '/':
      return isNumber(l) && isNumber(r) ? { ok: true, type: 'f32' } : { ok: false, expected: 'numbers' };
    case '%':
      return l === 'i32' && r === 'i32' ? { ok: true, type: 'i32' } : { ok: false, expected: 'i32 operands (use a float expression with floor for real modulo)' };
    case '<': case '<=': case '>': case '>=':
      return isNumber(l) && isNumber(r) ? { ok: true, type: 'bool' } : { ok: false, expected: 'numbers' };
    case '==': case '!=':
      return (isNumber(l) && isNumber(r)) || (l === 'bool' && r === 'bool')
        ? { ok: true, type: 'bool' } : { ok: false, expected: 'two numbers or two bools' };
    case '&&': case '||':
      return l === 'bool' && r === 'bool' ? { ok: true, type: 'bool' } : { ok: false, expected: 'bools' };
  }
}

export function unaryType(op: '-' | '!', t: ValueType): TypeResult {
  if (op === '-') return isNumber(t) ? { ok: true, type: t } : { ok: false, expected: 'a number' };
  return t === 'bool' ? { ok: true, type: 'bool' } : { ok: false, expected: 'a bool' };
}

export function ifType(a: ValueType, b: ValueType): TypeResult {
  if (a === 'bool' && b === 'bool') return { ok: true, type: 'bool' };
  if (isNumber(a) && isNumber(b)) return { ok: true, type: promote(a, b) };
  return { ok: false, expected: 'both branches bool, or both numbers' };
}

const REAL_FUNCTIONS = new Set(['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'floor', 'ceil', 'pow']);

/** Result type of a call whose arity is already known to be right. */
export function callType(fn: string, args: ValueType[]): TypeResult {
  if (!args.every(isNumber)) return { ok: false, expected: 'numeric arguments' };
  if (REAL_FUNCTIONS.has(fn)) return { ok: true, type: 'f32' };
  if (fn === 'abs' || fn === 'sign') return { ok: true, type: args[0] };
  if (fn === 'min' || fn === 'max' || fn === 'clamp') return { ok: true, type: args.every((t) => t === 'i32') ? 'i32' : 'f32' };
  if (fn === 'idiv') return args.every((t) => t === 'i32') ? { ok: true, type: 'i32' } : { ok: false, expected: 'i32 arguments' };
  throw new Error(`internal error: callType of unknown function ${fn}`);
}
