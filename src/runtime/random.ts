// Seeded random inputs for `attnc check`, tests and benchmarks: the same seed
// gives the same Q, K, V and tables on every machine (no Math.random).
import { AXIS_SIZE, type TableAxis } from '../compiler/syntax/ast.ts';
import { nameRecord } from '../compiler/own.ts';

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller) from a uniform source. */
export function normalSource(uniform: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - uniform(); // (0, 1]: log(u) is finite
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * uniform();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/** Derives independent streams (per tensor, per table name) from one seed. */
export function subSeed(seed: number, label: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function normals(n: number, seed: number): Float32Array {
  const next = normalSource(mulberry32(seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next();
  return out;
}

export interface Shape { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number }

/** Unit-variance normal Q [B,Hq,Nq,D], K and V [B,Hkv,Nk,D]. */
export function randomInputs(s: Shape, seed: number): { q: Float32Array; k: Float32Array; v: Float32Array } {
  return {
    q: normals(s.B * s.Hq * s.Nq * s.D, subSeed(seed, 'q')),
    k: normals(s.B * s.Hkv * s.Nk * s.D, subSeed(seed, 'k')),
    v: normals(s.B * s.Hkv * s.Nk * s.D, subSeed(seed, 'v')),
  };
}

/** A unit-variance normal upstream gradient dO [B,Hq,Nq,D] for the backward pass (its own stream of `seed`). */
export function randomGradient(s: Shape, seed: number): Float32Array {
  return normals(s.B * s.Hq * s.Nq * s.D, subSeed(seed, 'dO'));
}

export interface TableSpec { name: string; elem: 'f32' | 'i32'; axis: TableAxis }

export function axisLength(axis: TableAxis, s: { B: number; Hq: number; Nq: number; Nk: number }): number {
  return s[AXIS_SIZE[axis]];
}

/** Plausible tables for a spec's `input`s:
 *  - f32[heads]: ALiBi slopes 2^(-8(h+1)/H);
 *  - other f32: small normals (std 0.5);
 *  - i32[q_len|kv_len]: non-decreasing document ids with a few random boundaries;
 *  - i32[heads|batch]: small ints in 0..3. */
export function defaultTables(
  inputs: readonly TableSpec[],
  sizes: { B: number; Hq: number; Nq: number; Nk: number },
  seed: number,
): Record<string, Int32Array | Float32Array> {
  const out = nameRecord<Int32Array | Float32Array>();
  for (const t of inputs) {
    const n = axisLength(t.axis, sizes);
    const rand = mulberry32(subSeed(seed, `table:${t.name}`));
    if (t.elem === 'f32') {
      if (t.axis === 'heads') out[t.name] = Float32Array.from({ length: n }, (_, h) => 2 ** ((-8 * (h + 1)) / n));
      else out[t.name] = normals(n, subSeed(seed, `table:${t.name}`)).map((x) => 0.5 * x);
    } else if (t.axis === 'q_len' || t.axis === 'kv_len') {
      out[t.name] = documentIds(n, rand);
    } else {
      out[t.name] = Int32Array.from({ length: n }, () => Math.floor(rand() * 4));
    }
  }
  return out;
}

/** Sorted document ids 0,0,..,1,1,..: about 1 to 4 random boundaries. */
function documentIds(n: number, rand: () => number): Int32Array {
  const boundaries = new Set<number>();
  const count = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < count && n > 1; i++) boundaries.add(1 + Math.floor(rand() * (n - 1)));
  const ids = new Int32Array(n);
  let doc = 0;
  for (let i = 0; i < n; i++) {
    if (boundaries.has(i)) doc++;
    ids[i] = doc;
  }
  return ids;
}
