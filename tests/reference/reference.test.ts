// The float64 reference against naive attention written independently here,
// plus the DSL's mask/alignment/GQA rules.
import { describe, expect, it } from 'vitest';
import { referenceAttention, type ReferenceArgs } from '../../src/runtime/reference.ts';
import { randomInputs } from '../../src/runtime/random.ts';
import { bin, block, call, id, input, index, int, let_, mask, param, real, scale, score } from './ast-builders.ts';

type Sizes = { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number };

/** Naive softmax attention: keep(b, h, row, j) and an optional logit transform. */
function naive(
  s: Sizes,
  x: { q: Float32Array; k: Float32Array; v: Float32Array },
  keep: (h: number, qi: number, j: number) => boolean = () => true,
  transform: (logit: number, h: number, qi: number, j: number) => number = (l) => l,
  sc = 1 / Math.sqrt(s.D),
) {
  const o = new Float64Array(s.B * s.Hq * s.Nq * s.D);
  const lse = new Float64Array(s.B * s.Hq * s.Nq);
  for (let b = 0; b < s.B; b++) for (let h = 0; h < s.Hq; h++) {
    const hk = Math.floor((h * s.Hkv) / s.Hq);
    for (let i = 0; i < s.Nq; i++) {
      const qi = i + s.Nk - s.Nq;
      const ls: number[] = [];
      const js: number[] = [];
      for (let j = 0; j < s.Nk; j++) {
        if (!keep(h, qi, j)) continue;
        let dot = 0;
        for (let d = 0; d < s.D; d++) dot += x.q[((b * s.Hq + h) * s.Nq + i) * s.D + d] * x.k[((b * s.Hkv + hk) * s.Nk + j) * s.D + d];
        ls.push(transform(dot * sc, h, qi, j));
        js.push(j);
      }
      const r = (b * s.Hq + h) * s.Nq + i;
      if (ls.length === 0) { lse[r] = -Infinity; continue; }
      const m = Math.max(...ls);
      const ps = ls.map((l) => Math.exp(l - m));
      const z = ps.reduce((a, c) => a + c, 0);
      lse[r] = m + Math.log(z);
      for (let t = 0; t < js.length; t++) for (let d = 0; d < s.D; d++) {
        o[r * s.D + d] += (ps[t] / z) * x.v[((b * s.Hkv + hk) * s.Nk + js[t]) * s.D + d];
      }
    }
  }
  return { o, lse };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue; // equal infinities
    m = Math.max(m, Math.abs(a[i] - b[i]));
  }
  return m;
}

const args = (s: Sizes, x: ReturnType<typeof randomInputs>, extra: Partial<ReferenceArgs> = {}): ReferenceArgs => ({ ...x, ...s, ...extra });

describe('referenceAttention', () => {
  const s: Sizes = { B: 2, Hq: 2, Hkv: 2, Nq: 9, Nk: 9, D: 8 };
  const x = randomInputs(s, 1);

  it('plain spec (no statements) equals naive softmax attention', () => {
    const got = referenceAttention(block('plain'), args(s, x));
    const want = naive(s, x);
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
    expect(got.rows).toBeUndefined();
  });

  it('mask causal equals hand-written causal', () => {
    const got = referenceAttention(block('c', mask(id('causal'))), args(s, x));
    const want = naive(s, x, (_h, qi, j) => j <= qi);
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
  });

  it('a mask that empties row 0 gives O = 0 and LSE = -inf there, never NaN', () => {
    // mask kv_idx < q_idx: row 0 (q_idx 0) keeps no key.
    const got = referenceAttention(block('strict', mask(bin(id('kv_idx'), '<', id('q_idx')))), args(s, x));
    const want = naive(s, x, (_h, qi, j) => j < qi);
    for (let b = 0; b < s.B; b++) for (let h = 0; h < s.Hq; h++) {
      const r = (b * s.Hq + h) * s.Nq;
      expect(got.lse[r]).toBe(-Infinity);
      for (let d = 0; d < s.D; d++) expect(got.o[r * s.D + d]).toBe(0);
    }
    expect(got.o.some(Number.isNaN)).toBe(false);
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
  });

  it('a mask that is false everywhere gives all zeros and -inf', () => {
    const got = referenceAttention(block('none', mask(bin(id('head'), '<', int(0)))), args(s, x));
    expect(got.o.every((v) => v === 0)).toBe(true);
    expect(got.lse.every((v) => v === -Infinity)).toBe(true);
  });

  it('GQA: query head h reads kv head floor(h / (Hq/Hkv))', () => {
    const g: Sizes = { B: 1, Hq: 6, Hkv: 2, Nq: 5, Nk: 7, D: 4 };
    const xg = randomInputs(g, 2);
    const got = referenceAttention(block('gqa', mask(id('causal'))), args(g, xg));
    const want = naive(g, xg, (_h, qi, j) => j <= qi);
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    // Heads 0..2 share kv head 0: with identical queries they give identical outputs.
    const same = { ...xg, q: xg.q.slice() };
    for (let h = 1; h < 6; h++) same.q.set(xg.q.subarray(0, 5 * 4), h * 5 * 4);
    const r = referenceAttention(block('gqa'), args(g, same));
    const head = (h: number) => Array.from(r.o.subarray(h * 20, (h + 1) * 20));
    expect(head(1)).toEqual(head(0));
    expect(head(2)).toEqual(head(0));
    expect(head(3)).not.toEqual(head(0));
    expect(head(5)).toEqual(head(3));
  });

  it('q_len < kv_len aligns bottom-right: decode (Nq = 1) attends to every key under causal', () => {
    const d: Sizes = { B: 1, Hq: 2, Hkv: 1, Nq: 1, Nk: 13, D: 8 };
    const xd = randomInputs(d, 3);
    const causal = referenceAttention(block('c', mask(id('causal'))), args(d, xd));
    const plain = referenceAttention(block('p'), args(d, xd));
    expect(maxDiff(causal.o, plain.o)).toBe(0);
    // Nq = 4, Nk = 10: row i has q_idx = i + 6 and sees keys 0..i+6.
    const e: Sizes = { B: 1, Hq: 1, Hkv: 1, Nq: 4, Nk: 10, D: 8 };
    const xe = randomInputs(e, 4);
    const got = referenceAttention(block('c', mask(id('causal'))), args(e, xe));
    const want = naive(e, xe, (_h, qi, j) => j <= qi);
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
  });

  it('score transforms, params (default and given), scale override', () => {
    // softcap: score = cap * tanh(score / cap), with cap a param.
    const soft = block('softcap', param('cap', real(2.0)), score(bin(id('cap'), '*', call('tanh', bin(id('score'), '/', id('cap'))))), mask(id('causal')));
    const tr = (cap: number) => (l: number) => cap * Math.tanh(l / cap);
    for (const cap of [2, 0.5]) {
      const got = referenceAttention(soft, args(s, x, { params: cap === 2 ? {} : { cap } }));
      const want = naive(s, x, (_h, qi, j) => j <= qi, tr(cap));
      expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
      expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
    }
    // scale = 0.25 written after a score statement still scales the initial score.
    const sc = block('sc', score(bin(id('score'), '+', real(1))), scale(real(0.25)));
    const got = referenceAttention(sc, args(s, x));
    const want = naive(s, x, () => true, (l) => l + 1, 0.25);
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(() => referenceAttention(soft, args(s, x, { params: { cpa: 1 } }))).toThrow(/unknown param 'cpa'/);
  });

  it('scale-invariant transform with lets, matching a hand-written formula', () => {
    const si = block('si',
      param('tau', real(10.0)),
      let_('t', bin(id('q_idx'), '-', id('kv_idx'))),
      let_('l', call('log1p', bin(id('t'), '/', id('tau')))),
      score(bin(bin(id('score'), '*', call('sqrt', bin(bin(int(2), '*', id('l')), '+', int(1)))), '-', bin(int(2), '*', id('l')))),
      mask(id('causal')));
    const got = referenceAttention(si, args(s, x));
    const want = naive(s, x, (_h, qi, j) => j <= qi, (sc, _h, qi, j) => {
      const l = Math.log1p((qi - j) / 10);
      return sc * Math.sqrt(2 * l + 1) - 2 * l;
    });
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
  });

  it('document mask with an i32[kv_len] table and ALiBi with f32[heads]', () => {
    const doc = Int32Array.from([0, 0, 0, 1, 1, 2, 2, 2, 2]);
    const slopes = Float32Array.from([0.5, 0.25]);
    const spec = block('doc_alibi',
      input('doc', 'i32', 'kv_len'), input('slopes', 'f32', 'heads'),
      score(bin(id('score'), '-', bin(index('slopes', id('head')), '*', bin(id('q_idx'), '-', id('kv_idx'))))),
      mask(bin(id('causal'), '&&', bin(index('doc', id('q_idx')), '==', index('doc', id('kv_idx'))))));
    const got = referenceAttention(spec, args(s, x, { tables: { doc, slopes } }));
    const want = naive(s, x, (_h, qi, j) => j <= qi && doc[qi] === doc[j], (l, h, qi, j) => l - slopes[h] * (qi - j));
    expect(maxDiff(got.o, want.o)).toBeLessThan(1e-12);
    expect(maxDiff(got.lse, want.lse)).toBeLessThan(1e-12);
    expect(() => referenceAttention(spec, args(s, x, { tables: { doc: doc.subarray(1), slopes } }))).toThrow(/'doc' has length 8 but its axis kv_len has size 9/);
    expect(() => referenceAttention(spec, args(s, x, { tables: { slopes } }))).toThrow(/missing table 'doc'/);
    expect(() => referenceAttention(spec, args(s, x, { tables: { doc: Float32Array.from(doc), slopes } }))).toThrow(/'doc' is i32/);
  });

  it('rows option evaluates only the listed rows, equal to the full result', () => {
    const spec = block('c', mask(id('causal')));
    const full = referenceAttention(spec, args(s, x));
    const rows = [8, 0, 3];
    const part = referenceAttention(spec, args(s, x), { rows });
    expect(part.rows).toEqual(rows);
    expect(part.lse.length).toBe(s.B * s.Hq * rows.length);
    for (let bh = 0; bh < s.B * s.Hq; bh++) rows.forEach((r, i) => {
      expect(part.lse[bh * 3 + i]).toBe(full.lse[bh * s.Nq + r]);
      for (let d = 0; d < s.D; d++) expect(part.o[(bh * 3 + i) * s.D + d]).toBe(full.o[(bh * s.Nq + r) * s.D + d]);
    });
    expect(() => referenceAttention(spec, args(s, x), { rows: [9] })).toThrow(/row 9/);
  });

  it('rejects bad sizes', () => {
    expect(() => referenceAttention(block('p'), args({ ...s, Hkv: 3 }, x))).toThrow(/multiple of Hkv/);
    expect(() => referenceAttention(block('p'), args({ ...s, D: 7 }, x))).toThrow(/Q has/);
  });

});
