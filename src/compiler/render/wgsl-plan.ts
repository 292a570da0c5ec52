// Where each value of the WGSL kernel is computed (hoisting by dependency
// class). The kernel has five scopes, from cheapest to dearest:
//
//   head  once per invocation, before any loop (batch, head, sizes, params)
//   row   once per query row, before the KV loop (reads q_idx)
//   col   once per key of a KV tile, into a workgroup table (reads kv_idx)
//   diag  once per diagonal of a KV tile (BM + BN - 1 of them), into a
//         workgroup table: values that read positions only via q_idx - kv_idx
//   elem  once per (query, key) element, in the inner loop
//
// Cheap col/diag values (a comparison, a subtraction) are cheaper to recompute
// per element than to stage through workgroup memory, so only values that
// cost something (a transcendental, a table load, several ops) get a table.
import type { Node } from '../ir/nodes.ts';
import { topoOrder } from '../ir/nodes.ts';
import type { DepClass, LoweredKernel } from '../ir/program.ts';
import { joinClass } from '../passes/classes.ts';
import { exp2Feed } from './exp2-feed.ts';

export type Scope = 'head' | 'row' | 'col' | 'diag' | 'elem';

/** The values the element loop needs, already scaled by log2(e) for exp2. */
export interface ElemRoots {
  /** `const true` when the spec has no mask. */
  mask: Node;
  /** Affine: s2 = a2 * dot + c2 (a2, c2 include log2 e). Otherwise s2 = logit2. */
  a2: Node | null;
  c2: Node | null;
  logit2: Node | null;
}

export interface HoistPlan {
  roots: ElemRoots;
  scopeOf(n: Node): Scope;
  /** Values computed in each scope that a later scope reads, in topological order. */
  frontier: Record<Exclude<Scope, 'elem'>, Node[]>;
  maskFree: boolean;
}


/** Dependency class of a node, for nodes the analysis did not see (built here) by joining the arguments. */
export function classResolver(known: ReadonlyMap<Node, DepClass>): (n: Node) => DepClass {
  const memo = new Map<Node, DepClass>(known);
  return (root: Node) => {
    for (const n of topoOrder([root])) {
      if (memo.has(n)) continue;
      memo.set(n, n.args.length === 0 ? leafClass(n) : n.args.map((a) => memo.get(a)!).reduce(joinClass));
    }
    return memo.get(root)!;
  };
}

function leafClass(n: Node): DepClass {
  if (n.op === 'const') return 'const';
  if (n.op === 'dot') return 'elem';
  if (n.name === 'q_idx') return 'row';
  if (n.name === 'kv_idx') return 'col';
  return 'head';
}

const OP_COST: Partial<Record<string, number>> = {
  exp: 4, exp2: 4, log: 4, log2: 4, log1p: 6, sqrt: 4, rsqrt: 4, tanh: 6, sigmoid: 6, pow: 8,
  div: 2, idiv: 3, mod: 3, load: 4,
};

/** Cost of computing `n` from values of cheaper classes (cost of the same-class subgraph). */
function costWithin(n: Node, same: (m: Node) => boolean): number {
  let total = 0;
  for (const m of topoOrder([n])) {
    if (!same(m) || m.args.length === 0) continue;
    total += OP_COST[m.op] ?? 1;
  }
  return total;
}

/** A table in workgroup memory pays off from this cost on. */
const TABLE_COST = 4;

export function planHoisting(k: LoweredKernel): HoistPlan {
  const { program, analysis } = k;
  const f = program.factory;
  const feed = exp2Feed(k);
  const roots: ElemRoots = feed.affine
    ? { mask: program.mask, a2: feed.a2, c2: feed.c2, logit2: null }
    : { mask: program.mask, a2: null, c2: null, logit2: feed.logit2 };
  const maskFree = program.mask.op === 'const' && program.mask.value === true;
  const rootList = [roots.mask, roots.a2, roots.c2, roots.logit2].filter((r): r is Node => r !== null);

  const cls = classResolver(analysis.classOf);
  const memo = new Map<Node, Scope>();
  const scopeOf = (n: Node): Scope => {
    const hit = memo.get(n);
    if (hit) return hit;
    const c = cls(n);
    let s: Scope;
    switch (c) {
      case 'const': case 'head': s = 'head'; break;
      case 'row': s = 'row'; break;
      case 'col': case 'diag':
        // Leaves (kv_idx) and cheap expressions stay in the element loop.
        s = n.args.length > 0 && costWithin(n, (m) => cls(m) === c) >= TABLE_COST ? c : 'elem';
        break;
      case 'elem': s = 'elem'; break;
    }
    memo.set(n, s);
    return s;
  };

  // A value belongs to a scope's frontier when a dearer scope reads it. The
  // col and diag scopes recompute their own subgraphs from head values (they
  // rebind q_idx / kv_idx), so they only read head values.
  const frontier: HoistPlan['frontier'] = { head: [], row: [], col: [], diag: [] };
  const inFrontier = new Set<Node>();
  const add = (n: Node) => {
    const s = scopeOf(n);
    if (s === 'elem' || inFrontier.has(n)) return;
    inFrontier.add(n);
    frontier[s].push(n);
  };
  const order = topoOrder(rootList);
  for (const n of order) {
    const s = scopeOf(n);
    for (const a of n.args) if (scopeOf(a) !== s) add(a);
  }
  for (const r of rootList) add(r);
  // Keep every frontier in topological order (stable, readable output).
  const pos = new Map(order.map((n, i) => [n, i]));
  for (const key of Object.keys(frontier) as Array<keyof typeof frontier>) frontier[key].sort((x, y) => pos.get(x)! - pos.get(y)!);
  return { roots, scopeOf, frontier, maskFree };
}

