// Where each value of the per-element logit/mask is computed in a CUDA kernel.
//
// The dependency classes of the analysis say what a value reads; this file
// turns them into a plan:
//   head  -> once per block, in a register             (hv_<id>)
//   row   -> once per query row a thread owns           (rw_<id>[slot])
//   col   -> per KV tile, BN values in shared memory    (st_c<id>[stage][col])
//   diag  -> per KV tile, BM+BN-1 values in shared mem  (st_d<id>[stage][row-col+BN-1])
//   elem  -> inline in the inner loop
// Column and diagonal values go to shared memory only when they are costly
// (a transcendental, a division, a table read); cheap ones such as
// `q_idx - kv_idx < window` are recomputed inline, which beats a shared load.
import type { ValueType } from '../syntax/ast.ts';
import { topoOrder, type Node } from '../ir/nodes.ts';
import type { DepClass } from '../ir/program.ts';

const RANK: Record<DepClass, number> = { const: 0, head: 1, row: 2, col: 2, diag: 2, elem: 3 };

/** Classes from the analysis, with a local fallback for nodes it has not seen (e.g. the log2(e) folds made here). */
export function classifier(known: ReadonlyMap<Node, DepClass>): (n: Node) => DepClass {
  const memo = new Map<Node, DepClass>(known);
  const of = (n: Node): DepClass => {
    const hit = memo.get(n);
    if (hit) return hit;
    let c: DepClass;
    if (n.op === 'const') c = 'const';
    else if (n.op === 'dot') c = 'elem';
    else if (n.op === 'param') c = 'head';
    else if (n.op === 'builtin') c = n.name === 'q_idx' ? 'row' : n.name === 'kv_idx' ? 'col' : 'head';
    else if (n.op === 'sub' && isQK(n)) c = 'diag';
    else c = n.args.map(of).reduce(join, 'const' as DepClass);
    memo.set(n, c);
    return c;
  };
  return of;
}

function isQK(n: Node): boolean {
  const [a, b] = n.args;
  const name = (x: Node) => (x.op === 'builtin' ? x.name : undefined);
  return (name(a) === 'q_idx' && name(b) === 'kv_idx') || (name(a) === 'kv_idx' && name(b) === 'q_idx');
}

export function join(a: DepClass, b: DepClass): DepClass {
  if (a === b) return a;
  if (RANK[a] < RANK[b]) return RANK[a] === 2 ? 'elem' : b;
  if (RANK[b] < RANK[a]) return RANK[b] === 2 ? 'elem' : a;
  return 'elem'; // two different position classes (row+col, row+diag, ...)
}

const COSTLY = new Set(['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'pow', 'div', 'idiv', 'mod', 'load']);

export interface Hoist {
  node: Node;
  cls: 'head' | 'row' | 'col' | 'diag';
  ctype: string;
}

export interface HoistPlan {
  /** In dependency order (a hoist never reads a later one of its own level). */
  head: Hoist[];
  row: Hoist[];
  col: Hoist[];
  diag: Hoist[];
}

export const ctypeOf = (t: ValueType): string => (t === 'f32' ? 'float' : t === 'i32' ? 'int' : 'bool');
const isLeaf = (n: Node) => n.op === 'const' || n.op === 'dot' || n.op === 'builtin' || n.op === 'param';

/** Plans the hoisting of everything the per-element `roots` read. */
export function planHoists(roots: readonly Node[], classOf: (n: Node) => DepClass): HoistPlan {
  const order = topoOrder(roots);
  const costly = new Map<Node, boolean>();
  for (const n of order) costly.set(n, COSTLY.has(n.op) || n.args.some((a) => costly.get(a) && classOf(a) === classOf(n)));

  // Values the element level reads, found users-first (reverse topological
  // order): a cheap col/diag node evaluated inline makes its args element reads.
  const elemReads = new Set<Node>(roots);
  const chosen = new Set<Node>();
  for (const n of [...order].reverse()) {
    const c = classOf(n);
    if (c === 'elem') { n.args.forEach((a) => elemReads.add(a)); continue; }
    if (isLeaf(n) || c === 'const' || c === 'head' || !elemReads.has(n)) continue;
    if ((c === 'col' || c === 'diag') && !costly.get(n)) n.args.forEach((a) => elemReads.add(a));
    else chosen.add(n);
  }
  const plan: HoistPlan = { head: [], row: [], col: [], diag: [] };
  for (const n of order) {
    if (!chosen.has(n)) continue;
    const c = classOf(n) as 'row' | 'col' | 'diag';
    plan[c].push({ node: n, cls: c, ctype: ctypeOf(n.type) });
  }
  // Head values: maximal head/const non-leaf nodes read by anything finer.
  for (const n of order) {
    const c = classOf(n);
    if (c !== 'head' && c !== 'const') continue;
    if (isLeaf(n)) continue;
    const readFiner = order.some((u) => u.args.includes(n) && classOf(u) !== 'head' && classOf(u) !== 'const') || roots.includes(n);
    if (readFiner) plan.head.push({ node: n, cls: 'head', ctype: ctypeOf(n.type) });
  }
  return plan;
}
