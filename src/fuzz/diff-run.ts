// Runs one generated spec on a backend and on the float64 reference at
// random shapes, with compare.ts's tolerances (never loosened), and shrinks
// a failing shape. Backend-agnostic: WebGPU (WGSL) and CUDA alike.
import { frontEnd, lowerAndAnalyze, renderKernel } from '../compiler/compile.ts';
import type { CompiledKernel, StorageDType } from '../compiler/manifest.ts';
import type { AttentionCall, AttentionShape, Backend } from '../runtime/device.ts';
import { referenceAttention } from '../runtime/reference.ts';
import { compareOutputs, gradientError, TOLERANCE, withinTolerance, type Comparison } from '../runtime/compare.ts';
import { randomGradient, randomInputs, subSeed } from '../runtime/random.ts';
import { referenceBackward } from '../runtime/reference-backward.ts';
import { roundThrough } from '../runtime/half.ts';
import { makeRng, weighted, type Rng } from './rng.ts';
import type { DiffSpec, ParamDecl, TableDecl } from './diff-gen.ts';
import { nameRecord, own } from '../compiler/own.ts';

export interface DiffCase {
  shape: AttentionShape;
  dtype: StorageDType;
  seed: number;
  /** Q is multiplied by this (extreme magnitudes: tiny and large logits). */
  qScale: number;
  params: Record<string, number>;
}

export interface DiffOutcome {
  case: DiffCase; cmp: Comparison; pass: boolean; tolerance: number;
  /** The backward kernels' gradientError per gradient (runBackwardCase); `ambiguous` > 0: not compared. */
  grad?: { dq: number; dk: number; dv: number; nanCount: number; ambiguous: number };
}

/** A random shape: lengths 1..maxLen (often q_len < kv_len, sometimes >), GQA, heads up to 8. */
export function randomShape(r: Rng, D: number, maxLen: number, maxWork: number): AttentionShape {
  for (;;) {
    const len = () => weighted(r, [[3, r.int(1, maxLen)], [1, r.int(1, 20)], [1, r.pick([1, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129].filter((x) => x <= maxLen))]]);
    const Nk = len();
    const Nq = weighted(r, [[2, Nk], [3, r.int(1, Nk)], [1, 1], [1, len()]]);
    const Hkv = r.int(1, 2);
    const Hq = Hkv * r.pick([1, 2, 4]);
    const B = r.int(1, 2);
    if (B * Hq * Nq * Nk <= maxWork) return { B, Hq, Hkv, Nq, Nk, D };
  }
}

export function randomParams(r: Rng, params: ParamDecl[]): Record<string, number> {
  const out = nameRecord<number>();
  for (const p of params) {
    if (r.chance(0.3)) continue; // the default
    out[p.name] = p.type === 'i32' ? r.int(p.lo, p.hi) : Math.fround(p.lo + (p.hi - p.lo) * r.next());
  }
  return out;
}

/** Tables within the bounds the generator assumed: f32 in [-1, 1], i32 ids 0..7 (sorted for sequence axes). */
export function makeTables(decls: TableDecl[], s: AttentionShape, seed: number): Record<string, Int32Array | Float32Array> {
  const out = nameRecord<Int32Array | Float32Array>();
  for (const t of decls) {
    const n = { heads: s.Hq, batch: s.B, q_len: s.Nq, kv_len: s.Nk }[t.axis];
    const r = makeRng(subSeed(seed, t.name));
    if (t.elem === 'f32') out[t.name] = Float32Array.from({ length: n }, () => Math.fround(r.next() * 2 - 1));
    else if (t.axis === 'q_len' || t.axis === 'kv_len') {
      let doc = 0;
      out[t.name] = Int32Array.from({ length: n }, () => (doc = Math.min(7, doc + (r.chance(4 / n) ? 1 : 0))));
    } else out[t.name] = Int32Array.from({ length: n }, () => r.int(0, 7));
  }
  return out;
}

export interface Compiled {
  text: string; spec: DiffSpec; fe: Extract<ReturnType<typeof frontEnd>, { ok: true }>; lowered: ReturnType<typeof lowerAndAnalyze>;
  /** Rendered kernels by target/dtype/D: the shapes of one program share one render (the same source the backend caches its module by). */
  kernels: Map<string, CompiledKernel>;
}

export function compileDiff(spec: DiffSpec): Compiled {
  const fe = frontEnd('fuzz.attn', spec.text);
  if (!fe.ok) throw new Error(`generator produced an invalid spec:\n${spec.text}\n${fe.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n')}`);
  return { text: spec.text, spec, fe, lowered: lowerAndAnalyze(fe.block), kernels: new Map() };
}

/** The call of a case: inputs rounded to the storage dtype (the reference sees the same), params, tables. */
function caseCall(c: Compiled, dc: DiffCase): AttentionCall {
  const { shape, dtype } = dc;
  let { q, k, v } = randomInputs(shape, dc.seed);
  if (dc.qScale !== 1) q = q.map((x) => Math.fround(x * dc.qScale));
  // The kernel sees the inputs rounded to its storage dtype; so does the reference.
  if (dtype !== 'f32') [q, k, v] = [q, k, v].map((x) => roundThrough(dtype, x));
  const params = nameRecord<number>();
  for (const p of c.spec.params) params[p.name] = own(dc.params, p.name) ?? p.def;
  return { ...shape, q, k, v, params, tables: makeTables(c.spec.tables, shape, dc.seed) };
}

/** The program's kernel for the backend, dtype and head dim (rendered once, then cached in `c`). */
function kernelFor(backend: Backend, c: Compiled, dtype: StorageDType, D: number, pass: 'forward' | 'backward'): CompiledKernel {
  const codegen = backend.codegen();
  const key = `${JSON.stringify(codegen)}/${dtype}/${D}/${pass}`;
  let kernel = c.kernels.get(key);
  if (!kernel) c.kernels.set(key, (kernel = renderKernel(c.text, c.fe.block, c.lowered, { ...codegen, dtype, headDim: D, limits: backend.limits(), pass })));
  return kernel;
}

export async function runCase(backend: Backend, c: Compiled, dc: DiffCase): Promise<DiffOutcome> {
  return (await forwardCase(backend, c, dc)).outcome;
}

async function forwardCase(backend: Backend, c: Compiled, dc: DiffCase) {
  const call = caseCall(c, dc);
  const got = await backend.run(kernelFor(backend, c, dc.dtype, dc.shape.D, 'forward'), call);
  const want = referenceAttention(c.fe.block, call);
  const cmp = compareOutputs(got, want, dc.shape);
  const tolerance = TOLERANCE[dc.dtype];
  // A NaN in the reference would make the check moot; the generator rules it out, so it counts as a failure here.
  return { call, got, outcome: { case: dc, cmp, tolerance, pass: withinTolerance(cmp, tolerance) && cmp.refNanCount === 0 } };
}

/**
 * The forward case, then the backward kernels on its O and LSE with a random dO against the float64 backward
 * reference (gradientError). A case whose reference has pairs at a kink or jump of the logit is not compared
 * (`grad.ambiguous`): the derivative there is a convention.
 */
export async function runBackwardCase(backend: Backend, c: Compiled, dc: DiffCase): Promise<DiffOutcome> {
  const { call, got: o, outcome: fwd } = await forwardCase(backend, c, dc);
  if (!fwd.pass || !backend.backward) return fwd;
  const raw = randomGradient(dc.shape, dc.seed);
  const dO = dc.dtype === 'f32' ? raw : roundThrough(dc.dtype, raw);
  const got = await backend.backward(kernelFor(backend, c, dc.dtype, dc.shape.D, 'backward'), call, { o: o.o, lse: o.lse, dO });
  const want = referenceBackward(c.fe.block, call, dO);
  const [dq, dk, dv] = [gradientError(got.dq, want.dq), gradientError(got.dk, want.dk), gradientError(got.dv, want.dv)];
  const grad = { dq: dq.err, dk: dk.err, dv: dv.err, nanCount: dq.nanCount + dk.nanCount + dv.nanCount, ambiguous: want.ambiguous };
  const ok = grad.ambiguous > 0 || (grad.nanCount === 0 && Math.max(grad.dq, grad.dk, grad.dv) <= fwd.tolerance);
  return { ...fwd, grad, pass: ok };
}

/** Smaller shapes that still fail: halve lengths, drop batch and heads. */
export async function shrinkCase(backend: Backend, c: Compiled, failing: DiffOutcome, budget = 24, run = runCase): Promise<DiffOutcome> {
  let best = failing;
  for (let step = 0; step < budget; step++) {
    const s = best.case.shape;
    const cands: AttentionShape[] = [
      { ...s, B: 1 }, { ...s, Hq: s.Hkv }, { ...s, Hq: 1, Hkv: 1 },
      { ...s, Nq: Math.ceil(s.Nq / 2) }, { ...s, Nk: Math.ceil(s.Nk / 2) }, { ...s, Nq: s.Nq - 1 }, { ...s, Nk: s.Nk - 1 },
    ].filter((x) => x.Nq >= 1 && x.Nk >= 1 && JSON.stringify(x) !== JSON.stringify(s));
    let improved = false;
    for (const shape of cands) {
      const o = await run(backend, c, { ...best.case, shape });
      if (!o.pass) { best = o; improved = true; break; }
    }
    if (!improved) break;
  }
  return best;
}
