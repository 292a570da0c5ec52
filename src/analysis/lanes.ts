// Vectorised IR evaluation: the value of IR nodes for many "lanes" at once
// (one lane per key distance, or per sampled key).
//
// Why not ir/eval.ts `evalNodes` directly: `analyze` evaluates the logit of
// ~10^6 keys many times over, and a Map-per-pair walk would take minutes. This
// walks the DAG once per batch of lanes and applies each op to a whole
// Float64Array with the loops of vecops.ts, which compute what eval.ts
// `applyOp` computes in its 'f64' mode (f32 values kept in float64, i32
// wrapping as in a kernel); ops without a loop there go through applyOp.
//
// Booleans are stored as 0/1; applyOp treats them the same way as true/false
// (and/or/not/select test truthiness, a cast from 0/1 gives 0/1).
import { applyOp } from '../compiler/ir/eval.ts';
import { topoOrder, type Node } from '../compiler/ir/nodes.ts';
import { vecOp, type VecOp } from './vecops.ts';
import { own } from '../compiler/own.ts';

export type LaneValue = Float64Array | number;

export interface LaneEnv {
  /** Number of lanes. */
  n: number;
  /** Value of a leaf (`const`, `dot`, `builtin`, `param`): one number for every lane, or one per lane. */
  leaf(node: Node): LaneValue;
  /** Nodes whose per-lane values are already known; the walk does not descend below them. */
  given?: ReadonlyMap<Node, Float64Array>;
  tables: Readonly<Record<string, ArrayLike<number>>>;
}

/** Nodes reachable from `roots` without passing through a `given` node, arguments first. */
function order(roots: readonly Node[], given: ReadonlyMap<Node, Float64Array> | undefined): Node[] {
  return topoOrder(roots, given ? (n) => given.has(n) : undefined);
}

const fill = (n: number, v: number) => new Float64Array(n).fill(v);

/** Per-lane values of `roots` (and of every node evaluated on the way). */
export function evalLanes(roots: readonly Node[], env: LaneEnv): Map<Node, Float64Array> {
  const vec = new Map<Node, VecOp | undefined>();
  const { n } = env;
  const values = new Map<Node, Float64Array>();
  for (const node of order(roots, env.given)) {
    const known = env.given?.get(node);
    if (known) { values.set(node, known); continue; }
    if (node.args.length === 0) {
      const v = env.leaf(node);
      values.set(node, typeof v === 'number' ? fill(n, v) : v);
      continue;
    }
    const out = new Float64Array(n);
    const argv = node.args.map((a) => values.get(a)!);
    if (node.op === 'load') {
      const table = own(env.tables, node.name!);
      if (!table) throw new Error(`internal error: analyze has no table '${node.name}'`);
      const idx = argv[0];
      const last = table.length - 1;
      // Index clamped to the table, as the DSL says; an empty table reads 0.
      for (let i = 0; i < n; i++) out[i] = last < 0 ? 0 : table[Math.max(0, Math.min(last, idx[i]))];
    } else if (node.op === 'load_min' || node.op === 'load_max') {
      const table = own(env.tables, node.name!);
      if (!table) throw new Error(`internal error: analyze has no table '${node.name}'`);
      const [lo, hi] = argv;
      const last = table.length - 1;
      for (let i = 0; i < n; i++) {
        if (last < 0) { out[i] = 0; continue; }
        const a = Math.max(0, Math.min(last, lo[i])), b = Math.max(0, Math.min(last, Math.max(lo[i], hi[i])));
        let v = table[a];
        for (let j = a + 1; j <= b; j++) v = node.op === 'load_min' ? Math.min(v, table[j]) : Math.max(v, table[j]);
        out[i] = v;
      }
    } else if (vec.has(node) ? vec.get(node) : vec.set(node, vecOp(node.op, node.type)).get(node)) {
      vec.get(node)!(out, argv, n);
    } else {
      const scratch: number[] = new Array(argv.length).fill(0);
      const argType = node.args[0].type;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < argv.length; j++) scratch[j] = argv[j][i];
        const v = applyOp(node.op, node.type, scratch, 'f64', argType);
        out[i] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
      }
    }
    values.set(node, out);
  }
  return values;
}

/** Does `node` depend on the leaf `dot` (the score)? */
export function dependsOnDot(node: Node, memo = new Map<Node, boolean>()): boolean {
  for (const n of order([node], undefined)) {
    memo.set(n, n.op === 'dot' || n.args.some((a) => memo.get(a)!));
  }
  return memo.get(node)!;
}
