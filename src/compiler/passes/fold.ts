// Constant folding and safe algebraic identities.
//
// What: `Folder.make` builds one node like IrFactory.make but first tries to
// simplify it, assuming its arguments are already folded; `foldNode` rebuilds a
// whole DAG through it. Lowering, affine and mask-intervals build through a
// Folder, so their results are folded as they are made.
//
// Why exact semantics matter: a folded constant must equal what the kernel
// would have computed, so constants are evaluated by ir/eval.ts `applyOp` in
// its f32 mode (Math.fround after every f32 op; |0 and Math.imul for i32;
// truncated idiv/mod with divisor 0 giving 0). An f32 result that is not
// finite (inf, NaN) is NOT folded: renderers would have to spell it, and WGSL
// has no literal for it; the op stays and the kernel computes it.
//
// Identities, each exact for every input (including NaN, inf and -0):
//   x*1, 1*x, x/1, x*-1 -> -x        --x -> x      !!x -> x
//   x+(-0), x-(+0) -> x (f32); x+0 -> x only where x cannot be -0 (f32)
//   i32 only: x+0, x-0, x*0 -> 0, x-x -> 0, 0-x -> -x, idiv(x,1), mod(x,1) -> 0,
//             x==x, x<=x -> true; x<x, x!=x -> false; !(a<b) -> a>=b etc.
//   (f32 x*0 is not 0 for inf/NaN; f32 x==x is false for NaN: not folded)
//   select(true,a,b) -> a, select(c,a,a) -> a, select(!c,a,b) -> select(c,b,a),
//   select(c,true,false) -> c; and(true,x) -> x, and(false,x) -> false,
//   or(false,x) -> x, or(true,x) -> true, and(x,x)/or(x,x)/min(x,x)/max(x,x) -> x;
//   cast of a constant -> constant.
import type { ValueType } from '../syntax/ast.ts';
import { applyOp } from '../ir/eval.ts';
import type { BinaryOpName, IrFactory, Node, Op, UnaryOpName } from '../ir/nodes.ts';
import { topoOrder } from '../ir/nodes.ts';

const isConst = (n: Node, v?: number | boolean) => n.op === 'const' && (v === undefined || Object.is(n.value, v));
const COMPARISONS = new Set<Op>(['lt', 'le', 'gt', 'ge', 'eq', 'ne']);
const NEGATED: Partial<Record<Op, BinaryOpName>> = { lt: 'ge', le: 'gt', gt: 'le', ge: 'lt', eq: 'ne', ne: 'eq' };
/** f32 values that are never -0. */
const cannotBeNegZero = (x: Node) =>
  (x.op === 'const' && !Object.is(x.value, -0)) || (x.op === 'cast' && x.args[0].type !== 'f32')
  || x.op === 'exp' || x.op === 'exp2' || x.op === 'sigmoid' || x.op === 'abs';

export class Folder {
  /** `enabled = false` builds without any simplification (for tests). */
  constructor(readonly f: IrFactory, readonly enabled = true) {}

  num(v: number, type: 'i32' | 'f32'): Node { return this.f.num(v, type); }
  bool(v: boolean): Node { return this.f.bool(v); }

  /** Folded `op`; args must already be folded. */
  make(op: Op, type: ValueType, args: readonly Node[], extra: { value?: number | boolean; name?: string } = {}): Node {
    if (args.length === 0 || op === 'load' || op === 'load_min' || op === 'load_max') return this.f.make(op, type, args, extra);
    if (op === 'cast' && args[0].type === type) return args[0];
    if (!this.enabled) return this.f.make(op, type, args, extra);
    if (args.every((a) => a.op === 'const')) {
      const v = applyOp(op, type, args.map((a) => a.value!), 'f32', args[0].type);
      if (typeof v === 'boolean') return this.f.bool(v);
      if (type !== 'f32' || Number.isFinite(v)) return this.f.num(v, type as 'i32' | 'f32');
    }
    return this.identity(op, type, args) ?? this.f.make(op, type, args, extra);
  }

  private identity(op: Op, type: ValueType, args: readonly Node[]): Node | undefined {
    const [x, y, z] = args;
    const int = type === 'i32';
    switch (op) {
      case 'add':
        if (int) return isConst(y, 0) ? x : isConst(x, 0) ? y : undefined;
        if (isConst(y, -0) || (isConst(y, 0) && cannotBeNegZero(x))) return x;
        if (isConst(x, -0) || (isConst(x, 0) && cannotBeNegZero(y))) return y;
        return undefined;
      case 'sub':
        if (isConst(y, 0)) return x; // i32 0, or f32 +0: x - (+0) == x exactly
        if (int && x === y) return this.f.num(0, 'i32');
        if (int && isConst(x, 0)) return this.make('neg', type, [y]);
        return undefined;
      case 'mul':
        if (isConst(y, 1)) return x;
        if (isConst(x, 1)) return y;
        if (isConst(y, -1)) return this.make('neg', type, [x]);
        if (isConst(x, -1)) return this.make('neg', type, [y]);
        if (int && (isConst(x, 0) || isConst(y, 0))) return this.f.num(0, 'i32');
        return undefined;
      case 'div': return isConst(y, 1) ? x : undefined;
      case 'idiv': return int && isConst(y, 1) ? x : undefined;
      case 'mod': return int && isConst(y, 1) ? this.f.num(0, 'i32') : undefined;
      case 'neg': return x.op === 'neg' ? x.args[0] : undefined;
      case 'not': {
        if (x.op === 'not') return x.args[0];
        const neg = NEGATED[x.op];
        // !(a < b) == a >= b only when a, b are not NaN: i32 (or bool ==/!=).
        if (neg && x.args[0].type !== 'f32') return this.make(neg, 'bool', x.args);
        return undefined;
      }
      case 'select':
        if (isConst(x)) return x.value ? y : z;
        if (y === z) return y;
        if (x.op === 'not') return this.make('select', type, [x.args[0], z, y]);
        if (isConst(y, true) && isConst(z, false)) return x;
        if (isConst(y, false) && isConst(z, true)) return this.make('not', 'bool', [x]);
        return undefined;
      case 'and':
        if (isConst(x, false) || isConst(y, false)) return this.f.bool(false);
        if (isConst(x, true)) return y;
        if (isConst(y, true) || x === y) return x;
        return undefined;
      case 'or':
        if (isConst(x, true) || isConst(y, true)) return this.f.bool(true);
        if (isConst(x, false)) return y;
        if (isConst(y, false) || x === y) return x;
        return undefined;
      case 'min': case 'max': return x === y ? x : undefined;
      default:
        if (COMPARISONS.has(op) && x === y && x.type !== 'f32') return this.f.bool(op === 'le' || op === 'ge' || op === 'eq');
        return undefined;
    }
  }

  // Convenience builders. Binary arithmetic takes the type of its (equal-typed) args.
  un(op: UnaryOpName, x: Node): Node { return this.make(op, op === 'not' ? 'bool' : x.type, [x]); }
  bin(op: BinaryOpName, a: Node, b: Node): Node {
    const type: ValueType = COMPARISONS.has(op) || op === 'and' || op === 'or' ? 'bool' : a.type;
    return this.make(op, type, [a, b]);
  }
  cast(to: ValueType, x: Node): Node { return this.make('cast', to, [x]); }
  select(c: Node, a: Node, b: Node): Node { return this.make('select', a.type, [c, a, b]); }
  and(...xs: Node[]): Node { return xs.reduce((acc, x) => this.bin('and', acc, x), this.f.bool(true)); }
  or(...xs: Node[]): Node { return xs.reduce((acc, x) => this.bin('or', acc, x), this.f.bool(false)); }
  not(x: Node): Node { return this.un('not', x); }
  add(a: Node, b: Node): Node { return this.bin('add', a, b); }
  sub(a: Node, b: Node): Node { return this.bin('sub', a, b); }
  mul(a: Node, b: Node): Node { return this.bin('mul', a, b); }
  div(a: Node, b: Node): Node { return this.bin('div', a, b); }
  neg(x: Node): Node { return this.un('neg', x); }
  min(a: Node, b: Node): Node { return this.bin('min', a, b); }
  max(a: Node, b: Node): Node { return this.bin('max', a, b); }
}

/** Rebuilds `roots` bottom-up through a Folder; returns the folded roots in order. */
export function foldNodes(roots: readonly Node[], f: IrFactory): Node[] {
  const folder = new Folder(f);
  const map = new Map<Node, Node>();
  for (const n of topoOrder(roots)) {
    const extra = { ...(n.value !== undefined ? { value: n.value } : {}), ...(n.name !== undefined ? { name: n.name } : {}) };
    map.set(n, folder.make(n.op, n.type, n.args.map((a) => map.get(a)!), extra));
  }
  return roots.map((r) => map.get(r)!);
}

export function foldNode(root: Node, f: IrFactory): Node {
  return foldNodes([root], f)[0];
}
