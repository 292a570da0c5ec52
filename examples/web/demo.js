// The page's logic, without the DOM: runs the scale-invariant kernel (the
// module `attnc compile ../scale_invariant.attn --target ts -o .` writes
// beside this file) on random inputs, times it, and checks sampled rows
// against a float64 evaluation of the paper's formula written out here:
// logit = a_t * s + m_t, t = q - k >= 0, a_t = sqrt(2 log1p(t / tau) + 1),
// m_t = -2 log1p(t / tau), s = q.k / sqrt(D).
import { ScaleInvariantAttention } from './scale_invariant.f32.d64.js';

/** A seeded normal generator (so two runs see the same inputs). */
function normals(n, seed) {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())), th = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/** O row (D values) and LSE of query row `i` of head `h`, in float64. */
function referenceRow(q, k, v, h, i, N, D, tau) {
  const logits = [];
  for (let j = 0; j <= i; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[(h * N + i) * D + d] * k[(h * N + j) * D + d];
    const l = Math.log1p((i - j) / tau);
    logits.push(Math.sqrt(2 * l + 1) * (dot / Math.sqrt(D)) - 2 * l);
  }
  const m = Math.max(...logits);
  const w = logits.map((x) => Math.exp(x - m));
  const z = w.reduce((a, b) => a + b, 0);
  const o = new Float64Array(D);
  w.forEach((wj, j) => { for (let d = 0; d < D; d++) o[d] += (wj / z) * v[(h * N + j) * D + d]; });
  return { o, lse: m + Math.log(z) };
}

/**
 * Runs the demo on `gpu` (navigator.gpu, or Dawn's GPU in Node) and reports
 * through `log(line)`. Returns the worst absolute error over the sampled rows.
 */
export async function runDemo(gpu, log, { heads = 4, N = 512, tau = 10, repeats = 5 } = {}) {
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter: this browser or machine has no WebGPU');
  const device = await adapter.requestDevice();
  const D = ScaleInvariantAttention.headDim;
  const shape = { B: 1, Hq: heads, Hkv: heads, Nq: N, Nk: N };
  const q = normals(heads * N * D, 1), k = normals(heads * N * D, 2), v = normals(heads * N * D, 3);
  const attention = await ScaleInvariantAttention.create(device);
  let result = await attention.run({ q, k, v }, shape, { tau });
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    result = await attention.run({ q, k, v }, shape, { tau });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  log(`scale_invariant, ${heads} heads x ${N} tokens, D = ${D}: median ${times[times.length >> 1].toFixed(1)} ms per call (upload, kernel, read back)`);
  let worst = 0;
  for (const [h, i] of [[0, 0], [0, 1], [1, 37], [heads - 1, N >> 1], [heads - 1, N - 1]]) {
    const want = referenceRow(q, k, v, h, i, N, D, tau);
    for (let d = 0; d < D; d++) worst = Math.max(worst, Math.abs(result.o[(h * N + i) * D + d] - want.o[d]));
    worst = Math.max(worst, Math.abs(result.lse[h * N + i] - want.lse));
  }
  log(`max |error| over 5 sampled rows against a float64 evaluation of the formula: ${worst.toExponential(2)} (f32 tolerance 1e-4)`);
  device.destroy();
  return worst;
}
