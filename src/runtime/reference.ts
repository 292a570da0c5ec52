// The independent float64 reference: softmax attention whose logits and masks
// come from evaluating the spec's AST directly. It deliberately does not use
// the IR (src/compiler/ir), so that a lowering bug cannot hide in both the
// kernel and the reference (KERNELS.md, "Numerics and checking").
//
// The AST is turned once into a tree of closures (a closure-compiling
// tree-walking interpreter) that follows the DSL semantics of typing.ts:
// i32 arithmetic wraps to 32 bits, `/` is real division, `%` and idiv truncate
// toward zero and give 0 for a zero divisor, table indices are clamped, and
// everything "f32" is computed in float64.
//
// Speed comes from laziness and hoisting, not from a second lowering: every
// `let`, score version and the scale is a memoized slot, and each slot is
// cached at the coarsest level it depends on (per (batch, head), per query
// row, or per pair). The raw dot product is computed only when `score` is
// read, so pairs removed by a score-free mask (causal, window, documents)
// cost no dot product at all.
import type { AttentionBlock } from '../compiler/syntax/ast.ts';
import { bindParams, bindTables, bump, Cls, compileBlock, newCtx, type Ctx, type Table } from './reference-eval.ts';

export { compileBlock, idiv, imod, type CompiledBlock, type ParamInfo, type TableInfo, type Table } from './reference-eval.ts';


export interface ReferenceArgs {
  q: Float32Array | Float64Array;
  k: Float32Array | Float64Array;
  v: Float32Array | Float64Array;
  B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number;
  /** Missing params take the spec's default. */
  params?: Record<string, number>;
  tables?: Record<string, Table>;
}

export interface ReferenceResult {
  /** [B, Hq, R, D] where R is rows.length when rows were given, else Nq. */
  o: Float64Array;
  /** [B, Hq, R], natural log; -Infinity for a row with no kept key. */
  lse: Float64Array;
  /** The evaluated query rows, in the order of o/lse; absent when all rows. */
  rows?: number[];
}

/** Dependency class of a value: where it can be computed once. */
// ---------------------------------------------------------------------------
// One pair, for `attnc analyze`

export interface PairEnv {
  /** The raw dot(q, k), before the softmax scale. */
  score: number;
  q_idx: number; kv_idx: number; head: number; batch: number;
  q_len: number; kv_len: number; head_dim: number;
  params?: Record<string, number>;
  /** Lengths are not checked against the sizes here; indices are clamped. */
  tables?: Record<string, Table>;
}

/** The transformed logit of one (query, key) pair and whether the masks keep it.
 *  Every mask and the logit are evaluated (no short-circuit). */
export function evalLogitAndMask(block: AttentionBlock, env: PairEnv): { logit: number; kept: boolean } {
  return pairEvaluator(block, env)(env.score, env.q_idx, env.kv_idx, env.head, env.batch);
}

/** For many pairs of one call: binds sizes, params and tables once, then
 *  evaluates (raw dot, q_idx, kv_idx, head, batch) -> { logit, kept }. */
export function pairEvaluator(
  block: AttentionBlock,
  call: Pick<PairEnv, 'q_len' | 'kv_len' | 'head_dim' | 'params' | 'tables'>,
): (score: number, qIdx: number, kvIdx: number, head: number, batch: number) => { logit: number; kept: boolean } {
  const cb = compileBlock(block);
  const c = newCtx(cb, { qLen: call.q_len, kvLen: call.kv_len, headDim: call.head_dim });
  bindParams(cb, c, call.params ?? {}, `attention ${block.name}`);
  bindTables(cb, c, call.tables ?? {}, null, `attention ${block.name}`);
  const masks = [...cb.rowMasks, ...cb.pairMasks];
  let raw = 0;
  c.rawDot = () => raw;
  return (score, qIdx, kvIdx, head, batch) => {
    raw = score;
    c.qIdx = qIdx;
    c.kvIdx = kvIdx;
    c.head = head;
    c.batch = batch;
    bump(c, Cls.PerHead); // nothing memoized may survive a change of any index
    let kept = true;
    for (const m of masks) if (!m(c)) kept = false;
    return { logit: cb.logit(c), kept };
  };
}

// ---------------------------------------------------------------------------
// Attention

// dot(q, k) of the current pair, from float64 copies of the query row and of
// the (batch, kv head) block of K: monomorphic, so V8 keeps this loop tight.
function rawDot(c: Ctx): number {
  const q = c.qRow, k = c.kBlock, ko = c.kOff, D = c.headDim;
  // Four partial sums: a single one is bound by the latency of the adds.
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    s0 += q[d] * k[ko + d];
    s1 += q[d + 1] * k[ko + d + 1];
    s2 += q[d + 2] * k[ko + d + 2];
    s3 += q[d + 3] * k[ko + d + 3];
  }
  for (; d < D; d++) s0 += q[d] * k[ko + d];
  return (s0 + s1) + (s2 + s3);
}

export function referenceAttention(block: AttentionBlock, args: ReferenceArgs, opts: { rows?: number[] } = {}): ReferenceResult {
  const { B, Hq, Hkv, Nq, Nk, D } = args;
  const who = `reference (attention ${block.name})`;
  checkSizes(args, who);
  const cb = compileBlock(block);
  const rows = opts.rows ?? null;
  if (rows) for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= Nq) throw new Error(`${who}: row ${r} is outside 0..${Nq - 1}`);
  const R = rows ? rows.length : Nq;

  const c = newCtx(cb, { qLen: Nq, kvLen: Nk, headDim: D });
  bindParams(cb, c, args.params ?? {}, who);
  bindTables(cb, c, args.tables ?? {}, { B, Hq, Nq, Nk }, who);
  c.rawDot = rawDot;
  c.qRow = new Float64Array(D);
  const acc = new Float64Array(D);

  const o = new Float64Array(B * Hq * R * D);
  const lse = new Float64Array(B * Hq * R);
  const logits = new Float64Array(Nk);
  const keys = new Int32Array(Nk);
  const { rowMasks, pairMasks, logit } = cb;
  const group = Hq / Hkv;

  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      c.batch = b;
      c.head = h;
      bump(c, Cls.PerHead);
      const kvBase = (b * Hkv + Math.floor(h / group)) * Nk * D;
      // Float64 copies of this head's K and V (O(Nk*D), small next to the O(R*Nk*D) work).
      c.kBlock = Float64Array.from(args.k.subarray(kvBase, kvBase + Nk * D));
      const v = Float64Array.from(args.v.subarray(kvBase, kvBase + Nk * D));
      for (let ri = 0; ri < R; ri++) {
        const row = rows ? rows[ri] : ri;
        const out = (b * Hq + h) * R + ri;
        c.qIdx = row + (Nk - Nq);
        const qOff = ((b * Hq + h) * Nq + row) * D;
        for (let d = 0; d < D; d++) c.qRow[d] = args.q[qOff + d];
        bump(c, Cls.PerRow);
        let count = 0;
        let max = -Infinity;
        if (rowMasks.every((m) => m(c))) {
          for (let j = 0; j < Nk; j++) {
            c.kvIdx = j;
            c.kOff = j * D;
            c.gens[Cls.PerPair] = ++c.counter;
            let keep = true;
            for (let m = 0; m < pairMasks.length && keep; m++) keep = pairMasks[m](c) !== 0;
            if (!keep) continue;
            const l = logit(c);
            logits[count] = l;
            keys[count++] = j;
            if (l > max) max = l;
          }
        }
        // No kept key, or every kept logit is -inf: O = 0, LSE = -inf.
        if (count === 0 || max === -Infinity) {
          lse[out] = -Infinity;
          continue; // o is already 0
        }
        const sum = softmaxRow(logits, keys, count, max, v, D, acc);
        const oOff = out * D;
        for (let d = 0; d < D; d++) o[oOff + d] = acc[d] / sum;
        lse[out] = max + Math.log(sum);
      }
    }
  }
  return rows ? { o, lse, rows: [...rows] } : { o, lse };
}

/** acc = sum_t exp(logit_t - max) * V[key_t]; returns the sum of the weights.
 *  Four keys per pass over acc: the loop is bound by acc's loads/stores. */
function softmaxRow(logits: Float64Array, keys: Int32Array, count: number, max: number, v: Float64Array, D: number, acc: Float64Array): number {
  let sum = 0;
  acc.fill(0);
  let t = 0;
  for (; t + 4 <= count; t += 4) {
    const p0 = Math.exp(logits[t] - max), p1 = Math.exp(logits[t + 1] - max);
    const p2 = Math.exp(logits[t + 2] - max), p3 = Math.exp(logits[t + 3] - max);
    sum += p0 + p1 + p2 + p3;
    const o0 = keys[t] * D, o1 = keys[t + 1] * D, o2 = keys[t + 2] * D, o3 = keys[t + 3] * D;
    for (let d = 0; d < D; d++) acc[d] += p0 * v[o0 + d] + p1 * v[o1 + d] + p2 * v[o2 + d] + p3 * v[o3 + d];
  }
  for (; t < count; t++) {
    const p = Math.exp(logits[t] - max);
    sum += p;
    const vOff = keys[t] * D;
    for (let d = 0; d < D; d++) acc[d] += p * v[vOff + d];
  }
  return sum;
}

function checkSizes(a: ReferenceArgs, who: string): void {
  for (const k of ['B', 'Hq', 'Hkv', 'Nq', 'Nk', 'D'] as const) {
    if (!Number.isInteger(a[k]) || a[k] <= 0) throw new Error(`${who}: ${k} must be a positive integer, got ${a[k]}`);
  }
  if (a.Hq % a.Hkv !== 0) throw new Error(`${who}: Hq (${a.Hq}) must be a multiple of Hkv (${a.Hkv})`);
  const want = { q: a.B * a.Hq * a.Nq * a.D, k: a.B * a.Hkv * a.Nk * a.D, v: a.B * a.Hkv * a.Nk * a.D };
  for (const k of ['q', 'k', 'v'] as const) {
    if (a[k].length !== want[k]) throw new Error(`${who}: ${k.toUpperCase()} has ${a[k].length} elements but the shape needs ${want[k]}`);
  }
}
