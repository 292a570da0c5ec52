// Tile classification by interval analysis (KERNELS.md "Performance" 3).
//
// What: `tileTest(mask, f)` builds, AS IR, a small program over the tile bounds
// q_lo..q_hi, kv_lo..kv_hi (inclusive ranges of q_idx and kv_idx in a tile) and
// the other leaves (head, batch, sizes, params stay leaves: params are runtime
// values, so kernels run this program once per tile at run time). It yields
//   canBeTrue  (false => no pair of the tile is kept: skip the tile), and
//   canBeFalse (false => every pair is kept: skip evaluating the mask).
// Why: causal, window, sinks and prefix masks then need no block-mask tensor.
//
// SOUNDNESS (a wrong "always false" drops real keys):
// - Each numeric node gets [lo, hi] IR nodes, plus a runtime flag `ok` and a
//   static bound `mag` on |lo|, |hi|. An i32 op whose result could wrap is
//   either proven safe statically (mag < 2^31; positions and sizes are taken
//   to be < 2^30, params may be anything), or guarded at run time: its
//   operands must lie in (-2^30, 2^30) for add/sub, and the four products,
//   recomputed in f32, within ±2^30 for mul. When `ok` is false at run time
//   every comparison on the value is partial.
// - A `load` of an i32 table whose index has an interval [lo, hi] becomes
//   [load_min(lo, hi), load_max(lo, hi)] (ir/nodes.ts): the kernel scans the
//   table over the index range once per tile, so masks that read tables
//   (document ids) are classified at run time from the actual table contents.
//   Both read the same clamped indices as `load`, so the interval is the
//   exact hull; its `ok` is the index's (a wrapped index range bounds nothing) and
//   its `mag` that of any i32 (2^31). f32 loads stay unbounded (a NaN
//   element escapes min/max, and f32 comparisons are partial anyway).
// - Nodes we cannot bound are unbounded (null): f32 loads, dot, div, pow, rsqrt,
//   idiv/mod unless the divisor is a positive i32 constant. Comparisons on an
//   unbounded operand are partial (canBeTrue = canBeFalse = true).
// - Comparisons with an f32 operand are partial unless both sides are
//   constants: the kernel's f32 rounding (and approximate exp/log) could
//   differ from interval math. f32 intervals are still computed (monotone
//   functions, min/max, ...) but only i32 comparisons consume intervals.
// - i32 comparisons are exact: le(a,b): canBeTrue = a.lo <= b.hi,
//   canBeFalse = a.hi > b.lo; eq: canBeTrue = overlap, canBeFalse = not all
//   four bounds equal. and/or/not/select/eq on bools combine the pairs.
import type { Node, Op } from '../ir/nodes.ts';
import { IrFactory, topoOrder } from '../ir/nodes.ts';
import type { TileTest } from '../ir/program.ts';
import { evalNodes, type EvalEnv } from '../ir/eval.ts';
import { Folder } from './fold.ts';

interface Iv { lo: Node; hi: Node; ok: Node; mag: number }
interface Bv { t: Node; f: Node }
type Info = Iv | Bv | null;

const I32_MAX = 2 ** 31 - 1;
const POS_MAG = 2 ** 30 - 1;
const MONOTONE = new Set<Op>(['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'floor', 'ceil', 'tanh', 'sigmoid', 'sign', 'cast']);
const CMP = new Set<Op>(['lt', 'le', 'gt', 'ge', 'eq', 'ne']);

export function tileTest(mask: Node, factory: IrFactory): TileTest {
  const b = new Folder(factory);
  const info = new Map<Node, Info>();
  const T = b.bool(true), F = b.bool(false);
  const ivOf = (n: Node) => info.get(n) as Iv | null;
  const bvOf = (n: Node) => info.get(n) as Bv;
  const point = (n: Node, mag: number): Iv => ({ lo: n, hi: n, ok: T, mag });
  const magOf = (n: Node) => (n.type === 'i32' ? Math.abs(n.value as number) : Infinity);
  const within = (x: Node, m: number) => b.and(b.bin('gt', x, b.num(-m, 'i32')), b.bin('lt', x, b.num(m, 'i32')));

  const arith = (n: Node, x: Iv, y: Iv): Iv | null => {
    const int = n.type === 'i32';
    if (n.op === 'add' || n.op === 'sub') {
      const lo = n.op === 'add' ? b.add(x.lo, y.lo) : b.sub(x.lo, y.hi);
      const hi = n.op === 'add' ? b.add(x.hi, y.hi) : b.sub(x.hi, y.lo);
      if (!int || x.mag + y.mag <= I32_MAX) return { lo, hi, ok: b.and(x.ok, y.ok), mag: x.mag + y.mag };
      const guard = b.and(...[x.lo, x.hi, y.lo, y.hi].map((v) => within(v, 2 ** 30)));
      return { lo, hi, ok: b.and(x.ok, y.ok, guard), mag: I32_MAX };
    }
    if (n.op === 'mul') {
      const ps = [b.mul(x.lo, y.lo), b.mul(x.lo, y.hi), b.mul(x.hi, y.lo), b.mul(x.hi, y.hi)];
      const lo = ps.reduce((p, q) => b.min(p, q)), hi = ps.reduce((p, q) => b.max(p, q));
      if (!int || x.mag * y.mag <= I32_MAX) return { lo, hi, ok: b.and(x.ok, y.ok), mag: x.mag * y.mag };
      const fl = (v: Node) => b.cast('f32', v);
      const guard = b.and(...[[x.lo, y.lo], [x.lo, y.hi], [x.hi, y.lo], [x.hi, y.hi]].map(([u, v]) =>
        b.bin('le', b.un('abs', b.mul(fl(u), fl(v))), b.num(2 ** 30, 'f32'))));
      return { lo, hi, ok: b.and(x.ok, y.ok, guard), mag: I32_MAX };
    }
    if (n.op === 'min' || n.op === 'max') {
      return { lo: b.bin(n.op, x.lo, y.lo), hi: b.bin(n.op, x.hi, y.hi), ok: b.and(x.ok, y.ok), mag: Math.max(x.mag, y.mag) };
    }
    const c = y.lo === y.hi && y.lo.op === 'const' && int ? (y.lo.value as number) : 0;
    if (c > 0 && n.op === 'idiv') return { lo: b.bin('idiv', x.lo, y.lo), hi: b.bin('idiv', x.hi, y.lo), ok: x.ok, mag: x.mag };
    if (c > 0 && n.op === 'mod') {
      // Within one quotient block x % c = x - q*c is monotone; otherwise bound by sign.
      const same = b.bin('eq', b.bin('idiv', x.lo, y.lo), b.bin('idiv', x.hi, y.lo));
      const lo = b.select(same, b.bin('mod', x.lo, y.lo), b.select(b.bin('ge', x.lo, b.num(0, 'i32')), b.num(0, 'i32'), b.num(1 - c, 'i32')));
      const hi = b.select(same, b.bin('mod', x.hi, y.lo), b.select(b.bin('le', x.hi, b.num(0, 'i32')), b.num(0, 'i32'), b.num(c - 1, 'i32')));
      return { lo, hi, ok: x.ok, mag: c - 1 };
    }
    return null; // div, pow, idiv/mod by a non-constant
  };

  const unary = (n: Node, x: Iv): Iv | null => {
    const int = n.type === 'i32';
    const safe = !int || x.mag < 2 ** 31; // -INT_MIN and abs(INT_MIN) wrap
    const ok = safe ? x.ok : b.and(x.ok, b.bin('gt', x.lo, b.num(-(2 ** 31), 'i32')));
    const mag = n.type === 'i32' ? Math.min(x.mag, I32_MAX) : Infinity;
    if (n.op === 'neg') return { lo: b.neg(x.hi), hi: b.neg(x.lo), ok, mag };
    if (n.op === 'abs') {
      const zero = b.num(0, n.type as 'i32' | 'f32');
      const lo = b.select(b.bin('ge', x.lo, zero), x.lo, b.select(b.bin('le', x.hi, zero), b.neg(x.hi), zero));
      return { lo, hi: b.max(b.neg(x.lo), x.hi), ok, mag };
    }
    if (MONOTONE.has(n.op)) {
      const mk = (v: Node) => b.make(n.op, n.type, [v]);
      return { lo: mk(x.lo), hi: mk(x.hi), ok: x.ok, mag: n.op === 'sign' ? 1 : n.type === 'i32' ? x.mag : Infinity };
    }
    return null; // rsqrt (decreasing, poles), not
  };

  const compare = (n: Node): Bv => {
    const [l, r] = n.args;
    if (l.type === 'bool') {
      const x = bvOf(l), y = bvOf(r);
      const same = b.or(b.and(x.t, y.t), b.and(x.f, y.f)), diff = b.or(b.and(x.t, y.f), b.and(x.f, y.t));
      return n.op === 'eq' ? { t: same, f: diff } : { t: diff, f: same };
    }
    if (l.op === 'const' && r.op === 'const') {
      const v = b.bin(n.op as 'lt', l, r);
      return { t: v, f: b.not(v) };
    }
    const x = ivOf(l), y = ivOf(r);
    if (l.type === 'f32' || r.type === 'f32' || !x || !y) return { t: T, f: T };
    const bad = b.not(b.and(x.ok, y.ok));
    const guard = (p: Bv): Bv => ({ t: b.or(bad, p.t), f: b.or(bad, p.f) });
    const c = (op: 'lt' | 'le' | 'gt' | 'ge', u: Node, v: Node) => b.bin(op, u, v);
    switch (n.op) {
      case 'lt': return guard({ t: c('lt', x.lo, y.hi), f: c('ge', x.hi, y.lo) });
      case 'le': return guard({ t: c('le', x.lo, y.hi), f: c('gt', x.hi, y.lo) });
      case 'gt': return guard({ t: c('gt', x.hi, y.lo), f: c('le', x.lo, y.hi) });
      case 'ge': return guard({ t: c('ge', x.hi, y.lo), f: c('lt', x.lo, y.hi) });
      default: {
        const overlap = b.and(c('le', x.lo, y.hi), c('le', y.lo, x.hi));
        const single = b.and(b.bin('eq', x.lo, x.hi), b.bin('eq', y.lo, y.hi), b.bin('eq', x.lo, y.lo));
        return guard(n.op === 'eq' ? { t: overlap, f: b.not(single) } : { t: b.not(single), f: overlap });
      }
    }
  };

  for (const n of topoOrder([mask])) {
    let v: Info = null;
    const [x, y, z] = n.args;
    if (n.op === 'const') v = n.type === 'bool' ? { t: b.bool(n.value as boolean), f: b.bool(!n.value) } : point(n, magOf(n));
    else if (n.op === 'builtin') {
      if (n.name === 'q_idx') v = { lo: factory.builtin('q_lo'), hi: factory.builtin('q_hi'), ok: T, mag: POS_MAG };
      else if (n.name === 'kv_idx') v = { lo: factory.builtin('kv_lo'), hi: factory.builtin('kv_hi'), ok: T, mag: POS_MAG };
      else v = point(n, POS_MAG);
    } else if (n.op === 'param') v = point(n, n.type === 'i32' ? 2 ** 31 : Infinity);
    else if (n.type === 'bool') {
      if (n.op === 'and') v = { t: b.and(bvOf(x).t, bvOf(y).t), f: b.or(bvOf(x).f, bvOf(y).f) };
      else if (n.op === 'or') v = { t: b.or(bvOf(x).t, bvOf(y).t), f: b.and(bvOf(x).f, bvOf(y).f) };
      else if (n.op === 'not') v = { t: bvOf(x).f, f: bvOf(x).t };
      else if (n.op === 'select') {
        const c = bvOf(x), p = bvOf(y), q = bvOf(z);
        v = { t: b.or(b.and(c.t, p.t), b.and(c.f, q.t)), f: b.or(b.and(c.t, p.f), b.and(c.f, q.f)) };
      } else if (CMP.has(n.op)) v = compare(n);
      else throw new Error(`internal error: bool op ${n.op} in a mask`);
    } else if (n.op === 'select') {
      const c = bvOf(x), p = ivOf(y), q = ivOf(z);
      if (p && q) {
        const both = b.and(c.t, c.f);
        const pick = (hull: Node, a: Node, e: Node) => b.select(both, hull, b.select(c.t, a, e));
        v = { lo: pick(b.min(p.lo, q.lo), p.lo, q.lo), hi: pick(b.max(p.hi, q.hi), p.hi, q.hi), ok: b.and(p.ok, q.ok), mag: Math.max(p.mag, q.mag) };
      }
    } else if (n.op === 'load') {
      const p = ivOf(x);
      if (p && n.type === 'i32') {
        const lo = factory.loadRange('load_min', n.name!, 'i32', p.lo, p.hi);
        const hi = factory.loadRange('load_max', n.name!, 'i32', p.lo, p.hi);
        v = { lo, hi, ok: p.ok, mag: 2 ** 31 };
      }
    } else if (n.args.length === 2) {
      const p = ivOf(x), q = ivOf(y);
      v = p && q ? arith(n, p, q) : null;
    } else if (n.args.length === 1) {
      const p = ivOf(x);
      v = p && unary(n, p);
    }
    info.set(n, v);
  }
  const top = info.get(mask) as Bv | null;
  if (!top) throw new Error('internal error: mask is not bool');
  return { canBeTrue: top.t, canBeFalse: top.f };
}

/**
 * The table range reads (`load_min` / `load_max`) of a tile test that do not
 * depend on the key range (kv_lo, kv_hi): they are the same for every KV tile
 * of a query tile, so kernels compute them once per query tile.
 */
export function queryTileLoads(test: TileTest): Node[] {
  return tileLoadsFree(test, ['kv_lo', 'kv_hi']);
}

/**
 * The same with the roles swapped (the dK/dV kernel, whose block owns the keys and walks (head, query tile)
 * items): the range reads that depend on neither the query range nor the head, computed once per block.
 */
export function keyTileLoads(test: TileTest): Node[] {
  return tileLoadsFree(test, ['q_lo', 'q_hi', 'head']);
}

/**
 * Whether a tile's live test reads the low end of its query range, as a window's does (q - kv < w: q_lo - kv_hi < w):
 * then a key block's live queries end before the last, and the dK/dV launch's walk meets dead items after the live
 * ones. A causal test reads q_hi alone (q_hi >= kv_lo): its items stay live to the end. Chooses defaults, not results.
 */
export function liveQueriesEnd(test: TileTest): boolean {
  return topoOrder([test.canBeTrue]).some((n) => n.op === 'builtin' && n.name === 'q_lo');
}

/** A tile test's table range reads that depend on none of the builtins `without`. */
function tileLoadsFree(test: TileTest, without: readonly string[]): Node[] {
  const dep = new Map<Node, boolean>();
  const out: Node[] = [];
  for (const n of topoOrder([test.canBeTrue, test.canBeFalse])) {
    const d = (n.op === 'builtin' && without.includes(n.name!)) || n.args.some((a) => dep.get(a));
    dep.set(n, d);
    if (!d && (n.op === 'load_min' || n.op === 'load_max')) out.push(n);
  }
  return out;
}

export type TileClass = 'all' | 'none' | 'partial';

/** Classifies one tile: env must give q_lo/q_hi/kv_lo/kv_hi, the other builtins read, and params. */
export function classifyTile(test: TileTest, env: EvalEnv): TileClass {
  const v = evalNodes([test.canBeTrue, test.canBeFalse], env);
  if (!v.get(test.canBeTrue)) return 'none';
  return v.get(test.canBeFalse) ? 'partial' : 'all';
}
