// What feeds the softmax's exp2, shared by the WGSL and CUDA kernels: the
// logit times log2(e), folded into a and c when the logit is affine (one FMA
// per element), otherwise one multiply after the user's transform.
//
// The values are capped from above at 1e38 (a large finite f32): a transform
// that overflows f32 (e.g. `exp(score * 30)`) would otherwise give +inf,
// and the online softmax would compute inf - inf = NaN. Capped, the largest
// logits win as they do in float64. -inf is left alone: it means "no weight",
// and a row whose logits are all -inf stays empty (O = 0, LSE = -inf).
import type { LoweredKernel } from '../ir/program.ts';
import type { IrFactory, Node } from '../ir/nodes.ts';
import { foldNode } from '../passes/fold.ts';
import { hoistInvariantFactors } from '../passes/invariant-factors.ts';

const LOG2E = Math.LOG2E;
const CAP = 1e38;

/**
 * aPositive: a2 is > 0 for every head and input (provably, from its expression), so the row's largest
 * logit is a2 times its largest dot product plus c2, and a kernel may take the row max over raw dot
 * products and fold a2 into the exp2's FMA (cuda-wgmma-ws.ts).
 */
export type Exp2Feed = { affine: true; a2: Node; c2: Node; aPositive: boolean } | { affine: false; logit2: Node };

export function exp2Feed(k: LoweredKernel): Exp2Feed {
  const f = k.program.factory;
  // select, not min: min(NaN, cap) may give cap, and a NaN logit must stay NaN.
  const upTo = (x: Node, bound: number, above: boolean) =>
    f.make('select', 'f32', [f.make(above ? 'gt' : 'lt', 'bool', [x, f.num(bound, 'f32')]), f.num(bound, 'f32'), x]);
  const cap = (x: Node) => upTo(x, CAP, true);
  const scaled = (x: Node) => inLog2Units(x, f);
  const affine = k.analysis.affine;
  if (affine) {
    // |a| capped too, so that a * dot stays finite for any sane dot product.
    const aLog2 = scaled(affine.a);
    const a2 = upTo(cap(aLog2), -CAP, false);
    // Folded, so constant and per-head factors stay literals in the kernel.
    // Both caps keep a positive a2 positive (min(x, 1e38) and max(x, -1e38) of an x > 0), so the sign is read before them.
    return { affine: true, a2: foldNode(a2, f), c2: foldNode(cap(scaled(affine.c)), f), aPositive: isPositive(foldNode(aLog2, f)) };
  }
  return { affine: false, logit2: foldNode(cap(scaled(k.program.logit)), f) };
}

/**
 * `x * log2(e)` with invariant factors gathered (passes/invariant-factors.ts):
 * log2(e) joins the user's own scales, and a division by a per-head value
 * becomes a multiply. Not capped (`explain` prints it as the kernels' logit).
 */
export function inLog2Units(x: Node, f: IrFactory): Node {
  return foldNode(hoistInvariantFactors(f.make('mul', 'f32', [x, f.num(LOG2E, 'f32')]), f), f);
}

/**
 * Whether x > 0 for every input, by its form: a lower bound of at least 1e-30 through non-negative
 * literals and head_dim and the casts, square roots, sums, products, quotients, minima, maxima and
 * selects of them, each bound taken as f32 holds it (asF32: overflow to +inf, flushed subnormals).
 * Conservative: false where it cannot tell (a parameter; exp, which may underflow to 0).
 */
export function isPositive(x: Node): boolean {
  const r = nonNegativeRange(x);
  return r !== null && r[0] >= 1e-30;
}

/**
 * What an f32 holds of a non-negative bound: past the largest finite f32 it is +inf (so a reciprocal of it is
 * 0); a lower bound near or below the smallest normal (1.18e-38, with a margin for rounding) counts as 0, as
 * a kernel may flush it to zero.
 */
const MAX_F32 = 3.4028234663852886e38, TINY = 1e-37;
function asF32([lo, hi]: [number, number]): [number, number] | null {
  if (Number.isNaN(lo) || Number.isNaN(hi)) return null;
  return [lo > MAX_F32 ? Infinity : lo < TINY ? 0 : lo, hi > MAX_F32 ? Infinity : hi];
}

/** [lo, hi] with 0 <= lo, for the forms isPositive follows (as f32 computes them: asF32); null for any other. */
function nonNegativeRange(x: Node): [number, number] | null {
  const r = exactRange(x);
  return r && asF32(r);
}

/** One op's range from its operands' f32 ranges. */
function exactRange(x: Node): [number, number] | null {
  const two = (): [[number, number], [number, number]] | null => {
    const a = nonNegativeRange(x.args[0]), b = nonNegativeRange(x.args[1]);
    return a && b ? [a, b] : null;
  };
  switch (x.op) {
    case 'const': return typeof x.value === 'number' && x.value >= 0 ? [x.value, x.value] : null;
    case 'builtin': return x.name === 'head_dim' ? [1, 65536] : null;
    case 'cast': return nonNegativeRange(x.args[0]);
    case 'sqrt': { const a = nonNegativeRange(x.args[0]); return a && [Math.sqrt(a[0]), Math.sqrt(a[1])]; }
    case 'rsqrt': { const a = nonNegativeRange(x.args[0]); return a && a[0] > 0 ? [1 / Math.sqrt(a[1]), 1 / Math.sqrt(a[0])] : null; }
    case 'add': { const t = two(); return t && [t[0][0] + t[1][0], t[0][1] + t[1][1]]; }
    case 'mul': { const t = two(); return t && [t[0][0] * t[1][0], t[0][1] * t[1][1]]; }
    case 'div': { const t = two(); return t && t[1][0] > 0 ? [t[0][0] / t[1][1], t[0][1] / t[1][0]] : null; }
    case 'min': { const t = two(); return t && [Math.min(t[0][0], t[1][0]), Math.min(t[0][1], t[1][1])]; }
    case 'max': { const t = two(); return t && [Math.max(t[0][0], t[1][0]), Math.max(t[0][1], t[1][1])]; }
    case 'select': {
      const a = nonNegativeRange(x.args[1]), b = nonNegativeRange(x.args[2]);
      return a && b ? [Math.min(a[0], b[0]), Math.max(a[1], b[1])] : null;
    }
    default: return null;
  }
}
