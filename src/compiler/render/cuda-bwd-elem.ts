// The CUDA backward's element step (render/cuda-bwd.ts): per element of a tile, p from the forward's LSE and
// dS = p (dP - delta) g, with g = d logit / d(q.k); the logit and the mask come either evaluated in full per element
// (the default) or as the forward kernel evaluates them, from registers and per-tile tables (tuning `tables`).
import type { LoweredKernel } from '../ir/program.ts';
import type { Node } from '../ir/nodes.ts';
import { logitDerivative } from '../passes/derivative.ts';
import { emitValues } from './cstyle.ts';
import { CUDA } from './lang-cuda.ts';
import { leafNames, type SpecCode } from './cuda-spec.ts';
import { exp2Feed } from './exp2-feed.ts';
import type { CudaBackwardTuning } from './cuda-bwd-tuning.ts';

/** One element's logit (log2 units), g = d logit / d dot and whether it is kept, as CUDA lines over qi, kvi and dotv. */
interface ElementVariant { lines: string[]; logit2: string; g: string; keep: string }
/** On full tiles (no mask) and on partial ones (the mask, the ragged ends); each names its temporaries apart. */
interface ElementCode { plain: ElementVariant; masked: ElementVariant }

/** The element code of a launch: the forward's (tuning `tables`), else each value evaluated in full per element. */
export function elementCode(k: LoweredKernel, spec: SpecCode, tuning: CudaBackwardTuning, bn: number, transposed: boolean): ElementCode {
  return tuning.tables ? tableElementCode(k, spec, bn, transposed) : fullElementCode(k);
}

function fullElementCode(k: LoweredKernel): ElementCode {
  const P = k.program;
  const feed = exp2Feed(k);
  const maskFree = P.mask.op === 'const' && P.mask.value === true;
  const g = logitDerivative(P);
  const valueRoots: Node[] = feed.affine ? [feed.a2, feed.c2] : [feed.logit2];
  const names = leafNames(k);
  const variant = (masked: boolean): ElementVariant => {
    const roots = masked && !maskFree ? [...valueRoots, g, P.mask] : [...valueRoots, g];
    // The mask eagerly (compares and a select, as in the forward kernel), not a branch around each table read.
    const e = emitValues(roots, CUDA, names, { prefix: masked ? 'v_m' : 'v_e', indent: '          ', eagerLogic: masked });
    return {
      lines: e.lines,
      logit2: feed.affine ? `fmaf(${e.values[0]}, dotv, ${e.values[1]})` : e.values[0],
      g: e.values[valueRoots.length],
      keep: !masked ? 'true' : `((kvi < Nk) & (qrow < Nq)${maskFree ? '' : ` & ${e.values[valueRoots.length + 1]}`})`,
    };
  };
  return { plain: variant(false), masked: variant(true) };
}

/**
 * The forward kernel's element code (SpecCode.elem: head values once per tile, per-row values in registers,
 * per-key and per-diagonal values from the tile's shared tables) with g beside it: for an affine logit
 * a2 * dot + c2 (log2 units) g is a2 ln 2, read off the same value; otherwise the IR's derivative, evaluated
 * with the logit so that they share their terms. `transposed`: rows are keys, columns queries (the dK/dV kernel).
 */
function tableElementCode(k: LoweredKernel, spec: SpecCode, bn: number, transposed: boolean): ElementCode {
  const g = spec.affine ? null : logitDerivative(k.program);
  const variant = (masked: boolean): ElementVariant => {
    const e = spec.elem(masked, bn, false, false, { transposed, extra: g ? [g] : [] });
    // A full tile keeps every pair (its rows and keys all in range): no test at all, as in the default code.
    return { lines: e.lines, logit2: e.logit2, g: e.a2 !== null ? `(${e.a2}) * 0.6931471805599453f` : e.extra[0], keep: masked ? `(${e.keep} & (qrow < Nq))` : 'true' };
  };
  return { plain: variant(false), masked: variant(true) };
}

/**
 * The element step both launches share: p from the LSE, dS into `dp` (and, with keepP, p into `s` for dV).
 * `part` splits it in two around the wait for dP's product (tuning `overlap`): 'p' puts p into `s` (0 where a pair is
 * dropped), 'ds' reads it back for dS; g must then not depend on the dot product (an affine logit), which 'ds' no
 * longer has.
 */
export function elementStep(e: ElementVariant, rc: { lr: string; lc: string; qrow: string; qi: string; kvi: string; lse: string; delta: string }, keepP: boolean, rowSlot: boolean, part: 'all' | 'p' | 'ds' = 'all'): string {
  // rowSlot: per-row values sit in registers by row slot i (the dQ launch with tables).
  const ids = rowSlot ? ['const int i = r >> 1, lr', '(void)i; (void)lr'] : ['const int lr', '(void)lr'];
  const body = {
    all: `          // A dropped pair's logit and g may be NaN (a log of a negative distance): selected away, never multiplied.
          const float p = keep ? attnc_ex2(${e.logit2} - ${rc.lse}) : 0.f;
          dp[n][r] = keep ? p * (dp[n][r] - ${rc.delta}) * (${e.g}) : 0.f;${keepP ? '\n          s[n][r] = p;' : ''}`,
    p: `          s[n][r] = keep ? attnc_ex2(${e.logit2} - ${rc.lse}) : 0.f;  // p (a dropped pair's logit may be NaN: selected away)`,
    ds: `          dp[n][r] = keep ? s[n][r] * (dp[n][r] - ${rc.delta}) * (${e.g}) : 0.f;  // s holds p`,
  }[part];
  // A split part reads only some of the element's values (the logit's or g's): the rest are marked used, as nvcc
  // warns of a declared, unread variable (ptxas drops their code either way).
  const unread = part === 'all' ? [] : e.lines.flatMap((l) => [...l.matchAll(/^\s*const \w+ (\w+) =/g)].map((m) => m[1]));
  return `      #pragma unroll
      for (int n = 0; n < NT; ++n) {
        #pragma unroll
        for (int r = 0; r < 4; ++r) {
          ${ids[0]} = ${rc.lr}, lc = ${rc.lc};
          const int qrow = ${rc.qrow}, qi = ${rc.qi}, kvi = ${rc.kvi};
          const float dotv = s[n][r];
          ${ids[1]}; (void)lc; (void)qrow; (void)qi; (void)kvi; (void)dotv;
${e.lines.join('\n')}${unread.length ? `\n          ${unread.map((x) => `(void)${x};`).join(' ')}` : ''}
          const bool keep = ${e.keep};
${body}
        }
      }`;
}
