// The expression IR: small immutable nodes `{op, type, args}` built only by
// `IrFactory`, which hash-conses them, so structurally equal subexpressions
// are one object (CSE is free and nodes can be Map keys).
//
// Semantics are those of src/compiler/syntax/typing.ts; every node is typed
// and ops never mix types implicitly: lowering inserts `cast` nodes.
import type { ValueType } from '../syntax/ast.ts';

export type Leaf =
  /** A literal. `value` is a number (i32/f32) or boolean. */
  | 'const'
  /** The raw dot product q·k of the pair (f32), before any scale. */
  | 'dot'
  /** A built-in index or size: `name` is one of BUILTIN_LEAVES. */
  | 'builtin'
  /** A runtime scalar param: `name` is the user's name (never rendered raw). */
  | 'param';

export const BUILTIN_LEAVES = [
  'q_idx', 'kv_idx', 'head', 'batch', 'q_len', 'kv_len', 'head_dim',
  // Tile bounds, used only by the interval programs of mask analysis
  // (passes/mask-intervals.ts): inclusive ranges of q_idx and kv_idx in a tile.
  'q_lo', 'q_hi', 'kv_lo', 'kv_hi',
] as const;
export type BuiltinLeaf = (typeof BUILTIN_LEAVES)[number];

export type UnaryOpName = 'neg' | 'not' | 'cast'
  | 'exp' | 'exp2' | 'log' | 'log2' | 'log1p' | 'sqrt' | 'rsqrt' | 'tanh' | 'sigmoid'
  | 'abs' | 'sign' | 'floor' | 'ceil';
export type BinaryOpName = 'add' | 'sub' | 'mul' | 'div' | 'mod' | 'idiv' | 'min' | 'max' | 'pow'
  | 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne' | 'and' | 'or';

export type Op = Leaf
  | UnaryOpName
  | BinaryOpName
  /** `select(cond, a, b)`: a if cond else b (both evaluated; they are pure). */
  | 'select'
  /** `load(index)`: element of the table `name`, index clamped to its length. */
  | 'load'
  /**
   * `load_min(lo, hi)` / `load_max(lo, hi)` (i32 args, result the table's
   * element type): min / max of `table[clamp(i, 0, len-1)]` over i in lo..hi
   * (hi < lo: the single element at clamp(lo)). Used only by the tile tests
   * of mask analysis (passes/mask-intervals.ts) to bound a `load`.
   */
  | 'load_min' | 'load_max';

export interface Node {
  /** Unique per factory, increasing in creation order (so args have smaller ids). */
  readonly id: number;
  readonly op: Op;
  readonly type: ValueType;
  readonly args: readonly Node[];
  /** For `const`. */
  readonly value?: number | boolean;
  /** For `builtin`, `param`, `load`, `load_min`, `load_max`. */
  readonly name?: string;
}

export class IrFactory {
  private readonly table = new Map<string, Node>();
  private nextId = 0;

  make(op: Op, type: ValueType, args: readonly Node[] = [], extra: { value?: number | boolean; name?: string } = {}): Node {
    const v = extra.value;
    // -0 and 0 must stay distinct constants; NaN is one constant.
    const valueKey = v === undefined ? '' : typeof v === 'number' && Object.is(v, -0) ? '-0' : String(v);
    const key = `${op}|${type}|${extra.name ?? ''}|${valueKey}|${args.map((a) => a.id).join(',')}`;
    const found = this.table.get(key);
    if (found) return found;
    const node: Node = Object.freeze({ id: this.nextId++, op, type, args: Object.freeze([...args]), ...extra });
    this.table.set(key, node);
    return node;
  }

  num(value: number, type: 'i32' | 'f32'): Node {
    return this.make('const', type, [], { value: type === 'i32' ? value | 0 : Math.fround(value) });
  }
  bool(value: boolean): Node {
    return this.make('const', 'bool', [], { value });
  }
  builtin(name: BuiltinLeaf): Node {
    return this.make('builtin', 'i32', [], { name });
  }
  dot(): Node {
    return this.make('dot', 'f32');
  }
  param(name: string, type: 'i32' | 'f32'): Node {
    return this.make('param', type, [], { name });
  }
  load(table: string, elem: 'i32' | 'f32', index: Node): Node {
    return this.make('load', elem, [index], { name: table });
  }
  /** `load_min` / `load_max` of table `table` over the index range lo..hi. */
  loadRange(op: 'load_min' | 'load_max', table: string, elem: 'i32' | 'f32', lo: Node, hi: Node): Node {
    return this.make(op, elem, [lo, hi], { name: table });
  }
  cast(to: ValueType, x: Node): Node {
    return x.type === to ? x : this.make('cast', to, [x]);
  }
}

/**
 * All nodes reachable from `roots`, each once, arguments before users.
 * Nodes for which `stopAt` holds are listed but not descended into.
 */
export function topoOrder(roots: readonly Node[], stopAt?: (n: Node) => boolean): Node[] {
  const seen = new Set<Node>();
  const out: Node[] = [];
  const visit = (root: Node) => {
    // Iterative post-order so that deep expressions cannot overflow the stack.
    const stack: Array<{ node: Node; next: number }> = [{ node: root, next: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (seen.has(top.node)) { stack.pop(); continue; }
      if (top.next < top.node.args.length && !stopAt?.(top.node)) {
        const child = top.node.args[top.next++];
        if (!seen.has(child)) stack.push({ node: child, next: 0 });
      } else {
        seen.add(top.node);
        out.push(top.node);
        stack.pop();
      }
    }
  };
  roots.forEach(visit);
  return out;
}

/** Whether evaluating `roots` reads a table (nodes for which `given` holds are already computed). */
export function readsTable(roots: readonly Node[], given?: (n: Node) => boolean): boolean {
  return topoOrder(roots, given).some((n) => (n.op === 'load' || n.op === 'load_min' || n.op === 'load_max') && !given?.(n));
}
