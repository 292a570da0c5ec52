// Lowering: one checked AttentionBlock -> AttentionProgram (IR).
//
// Statements run in order; names are bound to IR nodes (`let` binds the node,
// so every use shares it; hash-consing makes equal expressions one node).
//
// `score` and `scale`: before the first `score =`, `score` is `dot * scale`,
// where `scale` is the value of the LAST `scale =` statement of the block
// (wherever it appears), or `1 / sqrt(f32(head_dim))` when there is none. So
// `scale =` always means "the softmax scale applied to the raw dot product".
// The checker guarantees that `scale` does not read `score`, which is what
// makes this well defined: we lower the block once to find the last scale,
// then (only if it differs from the default) lower it again using it.
//
// Types follow syntax/typing.ts; lowering makes every conversion explicit:
// i32 operands of f32 ops get a `cast` node, `/` casts both sides to f32,
// real functions cast their arguments to f32, `min/max/clamp/if` promote to a
// common type. `causal` is `kv_idx <= q_idx`; `clamp(x, lo, hi)` is
// `min(max(x, lo), hi)`; `if` is `select`; `t[i]` is `load(t, elem, i)`;
// several masks are AND-ed; no mask is `const true`. Everything is built
// through the Folder (passes/fold.ts), so the result is already folded.
import type { AttentionBlock, BinaryOp, Expr, ValueType } from '../syntax/ast.ts';
import { assertNever, BUILTIN_TYPES } from '../syntax/ast.ts';
import { binaryType, callType, ifType, unaryType, type TypeResult } from '../syntax/typing.ts';
import { IrFactory, type BinaryOpName, type BuiltinLeaf, type Node, type UnaryOpName } from '../ir/nodes.ts';
import type { AttentionProgram, InputInfo, ParamInfo } from '../ir/program.ts';
import { Folder, foldNode } from './fold.ts';

export interface LowerOptions {
  /** Build without folding (tests compare folded and unfolded programs). Default true. */
  fold?: boolean;
  /** Factory to build into (default: a new one). */
  factory?: IrFactory;
}

const BINARY: Record<BinaryOp, BinaryOpName> = {
  '||': 'or', '&&': 'and', '==': 'eq', '!=': 'ne', '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge',
  '+': 'add', '-': 'sub', '*': 'mul', '/': 'div', '%': 'mod',
};

function typed(r: TypeResult, what: string): ValueType {
  if (!r.ok) throw new Error(`internal error: lowering an ill-typed ${what} (expected ${r.expected}); the checker should have rejected it`);
  return r.type;
}

class Lowerer {
  readonly names = new Map<string, Node>();
  readonly tables = new Map<string, InputInfo>();
  readonly params: ParamInfo[] = [];
  readonly masks: Node[] = [];
  score: Node;
  lastScale: Node | undefined;

  constructor(readonly b: Folder, readonly f: IrFactory, scale: Node) {
    this.score = b.mul(f.dot(), scale);
  }

  run(block: AttentionBlock): void {
    for (const s of block.body) {
      switch (s.kind) {
        case 'param': {
          const dflt = foldNode(this.b.cast(s.type, this.expr(s.default)), this.f);
          if (dflt.op !== 'const') throw new Error(`internal error: default of param ${s.name} is not a constant`);
          this.params.push({ name: s.name, type: s.type, default: dflt.value as number });
          this.names.set(s.name, this.f.param(s.name, s.type));
          break;
        }
        case 'input': this.tables.set(s.name, { name: s.name, elem: s.elem, axis: s.axis }); break;
        case 'let': this.names.set(s.name, this.expr(s.value)); break;
        case 'assign':
          if (s.target === 'score') this.score = this.b.cast('f32', this.expr(s.value));
          else this.lastScale = this.b.cast('f32', this.expr(s.value));
          break;
        case 'mask': this.masks.push(this.expr(s.cond)); break;
        default: assertNever(s, 'statement');
      }
    }
  }

  /** Both operands converted to their common numeric type (i32 only if both are). */
  promote(a: Node, c: Node): [Node, Node] {
    if (a.type === c.type || a.type === 'bool' || c.type === 'bool') return [a, c];
    return [this.b.cast('f32', a), this.b.cast('f32', c)];
  }

  expr(e: Expr): Node {
    const b = this.b;
    switch (e.kind) {
      case 'number': return b.num(e.value, e.isInt ? 'i32' : 'f32');
      case 'bool': return b.bool(e.value);
      case 'name': return this.name(e.name);
      case 'unary': {
        const x = this.expr(e.arg);
        typed(unaryType(e.op, x.type), `unary ${e.op}`);
        return b.un(e.op === '-' ? 'neg' : 'not', x);
      }
      case 'binary': {
        let l = this.expr(e.left), r = this.expr(e.right);
        const type = typed(binaryType(e.op, l.type, r.type), `'${e.op}'`);
        if (e.op === '/') { l = b.cast('f32', l); r = b.cast('f32', r); } else [l, r] = this.promote(l, r);
        const out = b.bin(BINARY[e.op], l, r);
        if (out.type !== type) throw new Error(`internal error: lowered '${e.op}' to ${out.type}, typing says ${type}`);
        return out;
      }
      case 'call': return this.call(e.fn, e.args.map((a) => this.expr(a)));
      case 'index': {
        const t = this.tables.get(e.table);
        if (!t) throw new Error(`internal error: unknown table ${e.table}`);
        return this.f.load(t.name, t.elem, this.expr(e.index));
      }
      case 'if': {
        const c = this.expr(e.cond), t = this.expr(e.then), o = this.expr(e.else);
        typed(ifType(t.type, o.type), 'if');
        const [x, y] = this.promote(t, o);
        return b.select(c, x, y);
      }
      default: return assertNever(e, 'expression');
    }
  }

  name(n: string): Node {
    const bound = this.names.get(n);
    if (bound) return bound;
    if (n === 'score') return this.score;
    if (n === 'causal') return this.b.bin('le', this.f.builtin('kv_idx'), this.f.builtin('q_idx'));
    if (BUILTIN_TYPES[n] === 'i32') return this.f.builtin(n as BuiltinLeaf);
    throw new Error(`internal error: unknown name ${n}`);
  }

  call(fn: string, args: Node[]): Node {
    const b = this.b;
    const type = typed(callType(fn, args.map((a) => a.type)), `call of ${fn}`);
    const conv = args.map((a) => b.cast(type, a));
    switch (fn) {
      case 'min': case 'max': case 'pow': case 'idiv': return b.bin(fn, conv[0], conv[1]);
      case 'clamp': return b.min(b.max(conv[0], conv[1]), conv[2]);
      default: return b.un(fn as UnaryOpName, conv[0]);
    }
  }
}

function defaultScale(b: Folder, f: IrFactory): Node {
  return b.div(b.num(1, 'f32'), b.un('sqrt', b.cast('f32', f.builtin('head_dim'))));
}

export function lowerBlock(block: AttentionBlock, opts: LowerOptions = {}): AttentionProgram {
  const factory = opts.factory ?? new IrFactory();
  const b = new Folder(factory, opts.fold ?? true);
  let l = new Lowerer(b, factory, defaultScale(b, factory));
  l.run(block);
  if (l.lastScale) {
    const scale = l.lastScale;
    l = new Lowerer(b, factory, scale);
    l.run(block);
  }
  return {
    name: block.name,
    params: l.params,
    inputs: [...l.tables.values()],
    logit: l.score,
    mask: l.masks.length ? l.masks.reduce((x, y) => b.bin('and', x, y)) : b.bool(true),
    factory,
  };
}
