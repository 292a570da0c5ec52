// The float64 reference of the backward pass: dQ, dK, dV of softmax attention
// whose logits and masks come from the spec's AST (reference-eval.ts), like
// the forward reference. Independent of the compiler: the factor
// g = d logit / d (q·k) is a central difference of the AST's logit, not the
// IR's symbolic derivative (passes/derivative.ts) that the kernels use.
//
// With P = softmax of the kept logits per row, for upstream gradient dO:
//   dV_j = sum_i P_ij dO_i
//   dS_ij = P_ij (dO_i·V_j - sum_k P_ik dO_i·V_k)      (d loss / d logit)
//   dQ_i = sum_j dS_ij g_ij K_j,   dK_j = sum_i dS_ij g_ij Q_i
// GQA: dK and dV of a kv head sum over the query heads that read it.
// Gradients of params and tables are not computed (the kernels do not either).
import type { AttentionBlock } from '../compiler/syntax/ast.ts';
import { bindParams, bindTables, bump, Cls, compileBlock, newCtx, type Ctx } from './reference-eval.ts';
import type { ReferenceArgs } from './reference.ts';

export interface ReferenceGradients {
  /** [B, Hq, Nq, D] */
  dq: Float64Array;
  /** [B, Hkv, Nk, D] */
  dk: Float64Array;
  dv: Float64Array;
  /**
   * Pairs with weight whose logit has a kink or a jump in the score within the difference step (abs, min, max,
   * floor, a select switching): their one-sided slopes disagree, so the derivative there is a convention (a
   * kernel may take either side). A comparison with such pairs proves nothing about them; callers skip it.
   */
  ambiguous: number;
}

/** Relative step of the differences: the central one's error is ~step^2 * |f'''| plus ~1e-16 * |logit| / step. */
const STEP = 1e-6;
/** One-sided slopes further apart than this (relative) mark a kink or a jump within the step. */
const KINK = 1e-3;

export function referenceBackward(block: AttentionBlock, args: ReferenceArgs, dO: Float32Array | Float64Array): ReferenceGradients {
  const { B, Hq, Hkv, Nq, Nk, D } = args;
  const who = `reference backward (attention ${block.name})`;
  if (dO.length !== B * Hq * Nq * D) throw new Error(`${who}: dO has ${dO.length} elements but the shape needs ${B * Hq * Nq * D}`);
  const cb = compileBlock(block);
  const c: Ctx = newCtx(cb, { qLen: Nq, kvLen: Nk, headDim: D });
  bindParams(cb, c, args.params ?? {}, who);
  bindTables(cb, c, args.tables ?? {}, { B, Hq, Nq, Nk }, who);
  let raw = 0;
  c.rawDot = () => raw;
  const { rowMasks, pairMasks, logit } = cb;
  const logitAt = (x: number): number => {
    raw = x;
    c.gens[Cls.PerPair] = ++c.counter; // the pair's memoized values read the old dot product
    return logit(c);
  };

  const dq = new Float64Array(B * Hq * Nq * D);
  const dk = new Float64Array(B * Hkv * Nk * D);
  const dv = new Float64Array(B * Hkv * Nk * D);
  const group = Hq / Hkv;
  const keys: number[] = [], logits: number[] = [], slopes: number[] = [];
  const kinks = new Set<number>();
  let ambiguous = 0;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      c.batch = b;
      c.head = h;
      bump(c, Cls.PerHead);
      const kv = (b * Hkv + Math.floor(h / group)) * Nk * D;
      for (let row = 0; row < Nq; row++) {
        c.qIdx = row + (Nk - Nq);
        bump(c, Cls.PerRow);
        const qo = ((b * Hq + h) * Nq + row) * D;
        keys.length = logits.length = slopes.length = 0;
        kinks.clear();
        if (rowMasks.every((m) => m(c))) {
          for (let j = 0; j < Nk; j++) {
            c.kvIdx = j;
            const s = dot(args.q, qo, args.k, kv + j * D, D);
            raw = s;
            c.gens[Cls.PerPair] = ++c.counter;
            if (!pairMasks.every((m) => m(c) !== 0)) continue;
            const l = logit(c);
            const step = STEP * Math.max(1, Math.abs(s));
            const up = logitAt(s + step), down = logitAt(s - step);
            const right = (up - l) / step, left = (l - down) / step;
            if (Math.abs(right - left) > KINK * Math.max(1, Math.abs(left), Math.abs(right))) kinks.add(keys.length);
            keys.push(j);
            logits.push(l);
            slopes.push((up - down) / (2 * step));
          }
        }
        const max = Math.max(-Infinity, ...logits);
        if (max === -Infinity) continue; // an empty row: O = 0 whatever Q, K, V are
        let sum = 0;
        for (const l of logits) sum += Math.exp(l - max);
        const p = logits.map((l) => Math.exp(l - max) / sum);
        const dp = keys.map((j) => dot(dO, qo, args.v, kv + j * D, D));
        let delta = 0;
        for (let t = 0; t < keys.length; t++) delta += p[t] * dp[t];
        for (let t = 0; t < keys.length; t++) {
          if (p[t] === 0) continue;
          if (kinks.has(t)) ambiguous++;
          const ko = kv + keys[t] * D;
          const g = p[t] * (dp[t] - delta) * slopes[t];
          for (let d = 0; d < D; d++) {
            dq[qo + d] += g * args.k[ko + d];
            dk[ko + d] += g * args.q[qo + d];
            dv[ko + d] += p[t] * dO[qo + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv, ambiguous };
}

function dot(x: ArrayLike<number>, xo: number, y: ArrayLike<number>, yo: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += x[xo + d] * y[yo + d];
  return s;
}
