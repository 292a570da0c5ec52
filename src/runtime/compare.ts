// Comparing a kernel's outputs with the float64 reference (KERNELS.md,
// "Numerics and checking"): max abs error of O and of LSE, where an all-masked
// row must be -inf in both; NaNs are counted, never silently ignored.
import { mulberry32 } from './random.ts';

/** Max abs error against the float64 reference, unit-variance inputs. */
export const TOLERANCE = Object.freeze({ f32: 1e-4, f16: 5e-3, bf16: 3e-2 });

export interface Outputs {
  o: ArrayLike<number>;
  lse: ArrayLike<number>;
  /** When present, o/lse hold only these query rows ([B, H, rows.length, ...]). */
  rows?: readonly number[];
}

export interface CompareShape { B: number; Hq: number; Nq: number; D: number }

export interface Location { b: number; h: number; row: number; col: number }

export interface Comparison {
  maxAbsErrO: number;
  maxAbsErrLse: number;
  /** Where the largest O error is (col = head-dim index); null if nothing compared. */
  worst: Location | null;
  worstLse: Location | null;
  /** NaNs in `got` (in O or LSE) at compared positions. */
  nanCount: number;
  /** NaNs in `want`: the spec itself produces NaN, which makes the check moot. */
  refNanCount: number;
  rowsCompared: number;
}

/** Compares the rows of `want` (all of them, or `want.rows`), further limited to `rows` if given. */
export function compareOutputs(got: Outputs, want: Outputs, shape: CompareShape, rows?: readonly number[]): Comparison {
  const { B, Hq, Nq, D } = shape;
  const gotPos = rowPositions(got, Nq, 'got');
  const wantPos = rowPositions(want, Nq, 'want');
  const selected = rows ?? want.rows ?? Array.from({ length: Nq }, (_, i) => i);
  const Rg = got.rows?.length ?? Nq;
  const Rw = want.rows?.length ?? Nq;
  checkLength(got, B * Hq * Rg, D, 'got');
  checkLength(want, B * Hq * Rw, D, 'want');

  const res: Comparison = { maxAbsErrO: 0, maxAbsErrLse: 0, worst: null, worstLse: null, nanCount: 0, refNanCount: 0, rowsCompared: selected.length };
  for (const row of selected) {
    const pg = gotPos[row];
    const pw = wantPos[row];
    if (pg === undefined || pg < 0) throw new Error(`compareOutputs: row ${row} is not in the kernel's output`);
    if (pw === undefined || pw < 0) throw new Error(`compareOutputs: row ${row} is not in the reference`);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const ig = (b * Hq + h) * Rg + pg;
        const iw = (b * Hq + h) * Rw + pw;
        const el = lseError(got.lse[ig], want.lse[iw], res);
        if (el > res.maxAbsErrLse || res.worstLse === null) {
          res.worstLse = { b, h, row, col: 0 };
          res.maxAbsErrLse = el;
        }
        for (let d = 0; d < D; d++) {
          const g = got.o[ig * D + d];
          const w = want.o[iw * D + d];
          if (Number.isNaN(w)) { res.refNanCount++; continue; }
          if (Number.isNaN(g)) { res.nanCount++; continue; }
          const e = Math.abs(g - w);
          if (e > res.maxAbsErrO || res.worst === null) {
            res.worst = { b, h, row, col: d };
            res.maxAbsErrO = e;
          }
        }
      }
    }
  }
  return res;
}

/** |got - want| for LSE: both -inf is 0 error; -inf against finite is Infinity. */
function lseError(g: number, w: number, res: Comparison): number {
  if (Number.isNaN(w)) { res.refNanCount++; return 0; }
  if (Number.isNaN(g)) { res.nanCount++; return 0; }
  if (g === w) return 0; // also covers -inf == -inf
  return Math.abs(g - w); // Infinity when exactly one side is infinite
}

/** Did the comparison pass at this tolerance (NaNs in the kernel always fail)? */
export function withinTolerance(c: Comparison, tol: number): boolean {
  return c.nanCount === 0 && c.maxAbsErrO <= tol && c.maxAbsErrLse <= tol;
}

function rowPositions(out: Outputs, Nq: number, what: string): Int32Array {
  const pos = new Int32Array(Nq).fill(-1);
  if (!out.rows) return pos.map((_, i) => i);
  out.rows.forEach((r, i) => {
    if (!Number.isInteger(r) || r < 0 || r >= Nq) throw new Error(`compareOutputs: ${what} lists row ${r}, outside 0..${Nq - 1}`);
    pos[r] = i;
  });
  return pos;
}

function checkLength(out: Outputs, rowsTimesHeads: number, D: number, what: string): void {
  if (out.lse.length !== rowsTimesHeads || out.o.length !== rowsTimesHeads * D) {
    throw new Error(`compareOutputs: ${what} has ${out.o.length} O and ${out.lse.length} LSE values, expected ${rowsTimesHeads * D} and ${rowsTimesHeads}`);
  }
}

/** Query rows to check: all when Nq <= 512, else a sorted random sample of
 *  64 distinct rows that always includes the first and the last. */
export function sampleRows(Nq: number, seed: number, count = 64, allUpTo = 512): number[] {
  if (Nq <= allUpTo || Nq <= count) return Array.from({ length: Nq }, (_, i) => i);
  const rand = mulberry32(seed);
  const picked = new Set<number>([0, Nq - 1]);
  while (picked.size < count) picked.add(1 + Math.floor(rand() * (Nq - 2)));
  return [...picked].sort((a, b) => a - b);
}

/**
 * A gradient against the float64 reference: max |got - want| over the largest |want| (at least 1), since
 * gradients sum over many rows and their size varies with the call; compared with TOLERANCE. Non-finite
 * values of `got` are counted.
 */
export function gradientError(got: ArrayLike<number>, want: ArrayLike<number>): { err: number; nanCount: number } {
  let err = 0, scale = 1, nanCount = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i])) nanCount++;
    else err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { err: err / scale, nanCount };
}
