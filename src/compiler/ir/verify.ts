// IR verifier: checks the invariants every pass and backend relies on, and
// throws an internal error (a compiler bug, never a user diagnostic) when one
// is broken. Checked per node: args were created before it (smaller ids), the
// arity and argument/result types of its op (ops never mix types: lowering
// inserts casts), leaves carry their value/name; per program: logit is f32 and
// free of params of unknown name, mask is bool and does not read `dot`.
import type { ValueType } from '../syntax/ast.ts';
import { assertNever } from '../syntax/ast.ts';
import type { Node } from './nodes.ts';
import { BUILTIN_LEAVES, topoOrder } from './nodes.ts';
import type { AttentionProgram } from './program.ts';

function fail(n: Node, why: string): never {
  throw new Error(`internal error: IR verify: %${n.id} ${n.op} ${n.type}: ${why}`);
}

function expect(n: Node, arity: number, argTypes: (t: ValueType, i: number) => boolean, result: (t: ValueType) => boolean): void {
  if (n.args.length !== arity) fail(n, `expected ${arity} args, got ${n.args.length}`);
  n.args.forEach((a, i) => { if (!argTypes(a.type, i)) fail(n, `bad type ${a.type} of arg ${i} (%${a.id})`); });
  if (!result(n.type)) fail(n, 'bad result type');
}

const num = (t: ValueType) => t === 'i32' || t === 'f32';
const isF32 = (t: ValueType) => t === 'f32';

export function verifyNode(n: Node): void {
  for (const a of n.args) if (a.id >= n.id) fail(n, `arg %${a.id} is not older than the node`);
  const same = (t: ValueType) => t === n.type;
  const sameArgs = () => n.args.every((a) => a.type === n.args[0].type);
  switch (n.op) {
    case 'const':
      expect(n, 0, () => true, () => true);
      if (typeof n.value !== (n.type === 'bool' ? 'boolean' : 'number')) fail(n, 'const value does not match its type');
      if (n.type === 'i32' && (n.value as number) !== ((n.value as number) | 0)) fail(n, 'i32 const out of range');
      if (n.type === 'f32' && !Object.is(Math.fround(n.value as number), n.value)) fail(n, 'f32 const not representable');
      break;
    case 'dot': expect(n, 0, () => true, isF32); break;
    case 'builtin':
      expect(n, 0, () => true, (t) => t === 'i32');
      if (!(BUILTIN_LEAVES as readonly string[]).includes(n.name ?? '')) fail(n, `unknown builtin ${n.name}`);
      break;
    case 'param': expect(n, 0, () => true, num); if (!n.name) fail(n, 'param without name'); break;
    case 'load': expect(n, 1, (t) => t === 'i32', num); if (!n.name) fail(n, 'load without table name'); break;
    case 'load_min': case 'load_max':
      expect(n, 2, (t) => t === 'i32', num); if (!n.name) fail(n, `${n.op} without table name`); break;
    case 'neg': case 'abs': case 'sign': expect(n, 1, same, num); break;
    case 'not': expect(n, 1, (t) => t === 'bool', (t) => t === 'bool'); break;
    case 'cast': expect(n, 1, (t) => t !== n.type, () => true); break;
    case 'exp': case 'exp2': case 'log': case 'log2': case 'log1p': case 'sqrt': case 'rsqrt':
    case 'tanh': case 'sigmoid': case 'floor': case 'ceil':
      expect(n, 1, isF32, isF32); break;
    case 'add': case 'sub': case 'mul': case 'min': case 'max': expect(n, 2, same, num); break;
    case 'div': case 'pow': expect(n, 2, isF32, isF32); break;
    case 'mod': case 'idiv': expect(n, 2, (t) => t === 'i32', (t) => t === 'i32'); break;
    case 'lt': case 'le': case 'gt': case 'ge':
      expect(n, 2, num, (t) => t === 'bool'); if (!sameArgs()) fail(n, 'mixed operand types'); break;
    case 'eq': case 'ne': expect(n, 2, () => true, (t) => t === 'bool'); if (!sameArgs()) fail(n, 'mixed operand types'); break;
    case 'and': case 'or': expect(n, 2, (t) => t === 'bool', (t) => t === 'bool'); break;
    case 'select': expect(n, 3, (t, i) => (i === 0 ? t === 'bool' : t === n.type), () => true); break;
    default: assertNever(n.op, 'IR op');
  }
}

/** Verifies every node reachable from `roots`. */
export function verifyNodes(roots: readonly Node[]): void {
  for (const n of topoOrder(roots)) verifyNode(n);
}

export function verifyProgram(p: AttentionProgram): void {
  verifyNodes([p.logit, p.mask]);
  if (p.logit.type !== 'f32') throw new Error('internal error: IR verify: logit is not f32');
  if (p.mask.type !== 'bool') throw new Error('internal error: IR verify: mask is not bool');
  if (topoOrder([p.mask]).some((n) => n.op === 'dot')) throw new Error('internal error: IR verify: mask reads dot');
  const params = new Set(p.params.map((x) => x.name)), tables = new Set(p.inputs.map((x) => x.name));
  for (const n of topoOrder([p.logit, p.mask])) {
    if (n.op === 'param' && !params.has(n.name!)) throw new Error(`internal error: IR verify: unknown param ${n.name}`);
    if ((n.op === 'load' || n.op === 'load_min' || n.op === 'load_max') && !tables.has(n.name!)) throw new Error(`internal error: IR verify: unknown table ${n.name}`);
  }
}
