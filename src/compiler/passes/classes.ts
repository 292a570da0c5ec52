// Dependency classes (KERNELS.md "Performance" 1; DepClass in ir/program.ts).
//
// What: for every node reachable from the roots, what it reads:
//   const  nothing;            head  batch/head/sizes/params (and tile bounds);
//   row    q_idx (not kv_idx);  col   kv_idx (not q_idx);
//   diag   q_idx and kv_idx only through `q_idx - kv_idx` or `kv_idx - q_idx`;
//   elem   `dot`, or both positions in any other way.
// Why: a backend hoists each class to where it is computed once (per call,
// per tile row/column edge, per diagonal, per element).
//
// Classes combine by a join: const < head < row, col, diag < elem, and any two
// different ones of row/col/diag join to elem. A `load` takes the join of
// `head` (the table is a runtime input) and its index's class. Iterative over
// topoOrder, so shared subexpressions are classified once.
import { assertNever } from '../syntax/ast.ts';
import type { Node } from '../ir/nodes.ts';
import { topoOrder } from '../ir/nodes.ts';
import type { DepClass } from '../ir/program.ts';

const RANK: Record<DepClass, number> = { const: 0, head: 1, row: 2, col: 2, diag: 2, elem: 3 };

export function joinClass(a: DepClass, b: DepClass): DepClass {
  if (a === b) return a;
  if (RANK[a] !== RANK[b]) return RANK[a] > RANK[b] ? a : b;
  return RANK[a] === 2 ? 'elem' : a;
}

const isPos = (n: Node, name: 'q_idx' | 'kv_idx') => n.op === 'builtin' && n.name === name;

/** `q_idx - kv_idx` or `kv_idx - q_idx`. */
export function isDiagonalDifference(n: Node): boolean {
  if (n.op !== 'sub') return false;
  const [a, b] = n.args;
  return (isPos(a, 'q_idx') && isPos(b, 'kv_idx')) || (isPos(a, 'kv_idx') && isPos(b, 'q_idx'));
}

function leafClass(n: Node): DepClass {
  switch (n.op) {
    case 'const': return 'const';
    case 'dot': return 'elem';
    case 'param': return 'head';
    case 'builtin': return n.name === 'q_idx' ? 'row' : n.name === 'kv_idx' ? 'col' : 'head';
    default: throw new Error(`internal error: not a leaf: ${n.op}`);
  }
}

export function dependencyClasses(roots: readonly Node[]): Map<Node, DepClass> {
  const out = new Map<Node, DepClass>();
  for (const n of topoOrder(roots)) {
    let c: DepClass;
    if (n.args.length === 0) c = leafClass(n);
    else if (isDiagonalDifference(n)) c = 'diag';
    else {
      c = n.op === 'load' || n.op === 'load_min' || n.op === 'load_max' ? 'head' : 'const';
      for (const a of n.args) c = joinClass(c, out.get(a)!);
    }
    out.set(n, c);
  }
  return out;
}

/** Exhaustiveness helper for consumers that switch over classes. */
export function classRank(c: DepClass): number {
  switch (c) {
    case 'const': case 'head': case 'row': case 'col': case 'diag': case 'elem': return RANK[c];
    default: return assertNever(c, 'dependency class');
  }
}
