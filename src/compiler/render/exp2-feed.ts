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

export type Exp2Feed = { affine: true; a2: Node; c2: Node } | { affine: false; logit2: Node };

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
    const a2 = upTo(cap(scaled(affine.a)), -CAP, false);
    // Folded, so constant and per-head factors stay literals in the kernel.
    return { affine: true, a2: foldNode(a2, f), c2: foldNode(cap(scaled(affine.c)), f) };
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
