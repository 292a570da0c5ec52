// The DSL semantics of the reference's evaluator (typing.ts): integer
// arithmetic, division, modulo, table clamping, scale, and deep expressions.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Expr, Stmt } from '../../src/compiler/syntax/ast.ts';
import { evalLogitAndMask, pairEvaluator, referenceAttention, type PairEnv } from '../../src/runtime/reference.ts';
import { defaultTables, randomInputs } from '../../src/runtime/random.ts';
import { bin, block, bool, call, id, iff, index, input, int, let_, mask, neg, not, param, real, scale, score } from './ast-builders.ts';

const env: PairEnv = { score: 0.5, q_idx: 5, kv_idx: 2, head: 1, batch: 0, q_len: 8, kv_len: 8, head_dim: 16 };

/** The logit of `score = e` (scale 1) for the default pair. */
function value(e: Expr, extra: Stmt[] = [], more: Partial<PairEnv> = {}): number {
  return evalLogitAndMask(block('t', ...extra, scale(real(1)), score(e)), { ...env, ...more }).logit;
}
const keeps = (cond: Expr, extra: Stmt[] = [], more: Partial<PairEnv> = {}) => evalLogitAndMask(block('m', ...extra, mask(cond)), { ...env, ...more }).kept;

describe('reference semantics', () => {
  it('`/` is real division, also on two i32 (7 / 2 = 3.5)', () => {
    expect(value(bin(int(7), '/', int(2)))).toBe(3.5);
    expect(value(bin(int(1), '/', int(0)))).toBe(Infinity);
  });

  it('idiv and % truncate toward zero and give 0 for a zero divisor', () => {
    expect(value(call('idiv', neg(int(7)), int(2)))).toBe(-3);
    expect(value(call('idiv', int(7), neg(int(2))))).toBe(-3);
    expect(value(call('idiv', int(7), int(0)))).toBe(0);
    expect(value(bin(neg(int(7)), '%', int(2)))).toBe(-1);
    expect(value(bin(int(7), '%', neg(int(2))))).toBe(1);
    expect(value(bin(int(7), '%', int(0)))).toBe(0);
    expect(Object.is(value(bin(neg(int(4)), '%', int(2))), 0)).toBe(true); // not -0
    // The one overflowing quotient wraps: -2^31 / -1 = -2^31.
    expect(value(call('idiv', neg(int(2147483648)), neg(int(1))))).toBe(-2147483648);
  });

  it('i32 + - * and unary minus wrap to 32 bits; mixed with f32 they do not', () => {
    expect(value(bin(int(2147483647), '+', int(1)))).toBe(-2147483648);
    expect(value(bin(neg(int(2147483647)), '-', int(2)))).toBe(2147483647);
    expect(value(bin(int(65536), '*', int(65536)))).toBe(0);
    expect(value(bin(int(100000), '*', int(100000)))).toBe(1410065408);
    expect(value(neg(neg(int(2147483648))))).toBe(-2147483648);
    expect(value(bin(int(2147483647), '+', real(1)))).toBe(2147483648);
    expect(value(call('abs', neg(int(2147483648))))).toBe(-2147483648);
    // A wrapped i32 param in a mask: q_idx * big overflows to a negative.
    const big = [param('big', int(1 << 30), 'i32')];
    expect(keeps(bin(bin(id('q_idx'), '*', id('big')), '<', int(0)), big, { q_idx: 2 })).toBe(true); // 2 * 2^30 wraps to -2^31
    expect(keeps(bin(bin(id('q_idx'), '*', id('big')), '<', int(0)), big, { q_idx: 1 })).toBe(false);
  });

  it('functions: min/max/clamp/abs/sign keep i32, the rest are real', () => {
    expect(value(call('clamp', int(12), int(0), int(10)))).toBe(10);
    expect(value(call('clamp', real(-0.5), int(0), int(10)))).toBe(0);
    expect(value(call('min', int(3), real(2.5)))).toBe(2.5);
    expect(value(call('max', neg(int(3)), int(-4)))).toBe(-3);
    expect(value(call('sign', neg(real(0.2))))).toBe(-1);
    expect(value(call('floor', neg(real(1.5))))).toBe(-2);
    expect(value(call('ceil', real(1.2)))).toBe(2);
    expect(value(call('exp2', int(3)))).toBe(8);
    expect(value(call('log2', int(8)))).toBe(3);
    expect(value(call('rsqrt', int(4)))).toBe(0.5);
    expect(value(call('sigmoid', int(0)))).toBe(0.5);
    expect(value(call('pow', int(2), real(0.5)))).toBeCloseTo(Math.SQRT2, 15);
    expect(value(call('tanh', int(0)))).toBe(0);
    expect(value(call('log1p', int(0)))).toBe(0);
  });

  it('builtins: q_idx, kv_idx, head, batch, sizes, causal, if, && || !', () => {
    const more = { q_idx: 5, kv_idx: 2, head: 3, batch: 1, q_len: 6, kv_len: 9, head_dim: 32 };
    expect(value(bin(bin(id('q_idx'), '*', int(1000)), '+', id('kv_idx')), [], more)).toBe(5002);
    expect(value(bin(bin(id('head'), '*', int(10)), '+', id('batch')), [], more)).toBe(31);
    expect(value(bin(bin(id('q_len'), '*', int(100)), '+', bin(id('kv_len'), '*', int(10))), [], more)).toBe(690);
    expect(value(id('head_dim'), [], more)).toBe(32);
    expect(keeps(id('causal'), [], { q_idx: 5, kv_idx: 5 })).toBe(true);
    expect(keeps(id('causal'), [], { q_idx: 5, kv_idx: 6 })).toBe(false);
    expect(value(iff(id('causal'), int(1), real(2.5)), [], { kv_idx: 9 })).toBe(2.5);
    expect(keeps(bin(not(bool(false)), '&&', bin(bool(false), '||', bool(true))))).toBe(true);
    expect(keeps(bin(bool(true), '==', bool(false)))).toBe(false);
  });

  it('score: raw dot times scale (default 1/sqrt(head_dim)), redefinitions see the previous value', () => {
    expect(evalLogitAndMask(block('p'), env).logit).toBe(0.5 / 4);
    const twice = block('t', score(bin(id('score'), '+', int(1))), let_('s1', id('score')), score(bin(id('score'), '*', id('s1'))));
    expect(evalLogitAndMask(twice, env).logit).toBe((0.125 + 1) * (0.125 + 1));
    // scale may come after its use and read lets and params.
    const sc = block('s', param('temp', real(2.0)), score(bin(id('score'), '+', int(1))), let_('h', bin(id('head'), '+', int(1))), scale(bin(id('temp'), '*', id('h'))));
    expect(evalLogitAndMask(sc, { ...env, head: 2 }).logit).toBe(0.5 * 6 + 1);
    expect(evalLogitAndMask(sc, { ...env, head: 2, params: { temp: 1 } }).logit).toBe(0.5 * 3 + 1);
  });

  it('masks AND together, and evalLogitAndMask reports the logit of masked pairs too', () => {
    const b = block('w', param('window', int(2), 'i32'), mask(id('causal')), mask(bin(bin(id('q_idx'), '-', id('kv_idx')), '<', id('window'))));
    expect(evalLogitAndMask(b, { ...env, q_idx: 5, kv_idx: 4 }).kept).toBe(true);
    expect(evalLogitAndMask(b, { ...env, q_idx: 5, kv_idx: 3 }).kept).toBe(false);
    expect(evalLogitAndMask(b, { ...env, q_idx: 5, kv_idx: 6 }).kept).toBe(false);
    expect(evalLogitAndMask(b, { ...env, q_idx: 5, kv_idx: 3, params: { window: 3 } }).kept).toBe(true);
    expect(evalLogitAndMask(b, { ...env, q_idx: 5, kv_idx: 9 }).logit).toBe(0.125);
    expect(() => evalLogitAndMask(b, { ...env, params: { window: 2.5 } })).toThrow(/param 'window' is i32/);
  });

  it('tables are indexed by value and the index is clamped to [0, len-1]', () => {
    const t = [input('tab', 'f32', 'kv_len'), input('doc', 'i32', 'kv_len')];
    const tables = { tab: Float32Array.of(10, 20, 30), doc: Int32Array.of(7, 8, 9) };
    expect(value(index('tab', int(1)), t, { tables })).toBe(20);
    expect(value(index('tab', neg(int(5))), t, { tables })).toBe(10);
    expect(value(index('tab', int(3)), t, { tables })).toBe(30);
    expect(value(index('tab', int(2147483647)), t, { tables })).toBe(30);
    expect(value(index('doc', bin(id('kv_idx'), '+', int(100))), t, { tables })).toBe(9);
    // In attention: doc[q_idx] with q_idx past the table (q_len < kv_len is fine, kv_len
    // tables have Nk entries) and a q_len table read at q_idx gets clamped.
    const spec = block('clamp', input('w', 'f32', 'q_len'), score(bin(id('score'), '+', index('w', id('q_idx')))));
    const s = { B: 1, Hq: 1, Hkv: 1, Nq: 2, Nk: 5, D: 4 };
    const x = randomInputs(s, 9);
    const w = Float32Array.of(1000, 2000);
    const a = referenceAttention(spec, { ...x, ...s, tables: { w } });
    const plain = referenceAttention(block('p'), { ...x, ...s });
    // q_idx is 3 and 4: both clamp to w[1] = 2000, a constant shift of the row.
    expect(a.lse[0] - plain.lse[0]).toBeCloseTo(2000, 9);
    expect(a.lse[1] - plain.lse[1]).toBeCloseTo(2000, 9);
  });

  it('pairEvaluator binds once and agrees with evalLogitAndMask on every pair', () => {
    const b = block('si', param('tau', real(10.0)), let_('l', call('log1p', bin(bin(id('q_idx'), '-', id('kv_idx')), '/', id('tau')))),
      score(bin(bin(id('score'), '*', call('sqrt', bin(bin(int(2), '*', id('l')), '+', int(1)))), '-', bin(int(2), '*', id('l')))), mask(id('causal')));
    const call_ = { q_len: 6, kv_len: 6, head_dim: 16, params: { tau: 3 } };
    const ev = pairEvaluator(b, call_);
    for (let q = 0; q < 6; q++) for (let k = 0; k < 6; k++) {
      const one = evalLogitAndMask(b, { ...call_, score: q - k * 0.5, q_idx: q, kv_idx: k, head: 0, batch: 0 });
      const got = ev(q - k * 0.5, q, k, 0, 0);
      expect(got.kept).toBe(k <= q);
      expect(got.kept).toBe(one.kept);
      if (got.kept) expect(got.logit).toBe(one.logit);
    }
  });

  it('i32 and f32 mixed in comparisons promote (1 == 1.0)', () => {
    expect(keeps(bin(int(1), '==', real(1.0)))).toBe(true);
    expect(keeps(bin(int(3), '<', real(2.5)))).toBe(false);
  });

  it('evaluates expressions 2000 deep without overflowing the stack', () => {
    let e: Expr = id('score');
    for (let i = 0; i < 2000; i++) e = bin(e, '+', int(1));
    expect(value(e)).toBe(0.5 + 2000);
    let c: Expr = bool(true);
    for (let i = 0; i < 2000; i++) c = not(c);
    expect(keeps(c)).toBe(true);
  });

  it('a score-dependent mask is evaluated with the transformed score', () => {
    const b = block('pos', score(bin(id('score'), '*', int(2))), mask(bin(id('score'), '>', real(0.2))));
    expect(evalLogitAndMask(b, { ...env, score: 0.5 }).kept).toBe(true); // 0.5/4*2 = 0.25
    expect(evalLogitAndMask(b, { ...env, score: 0.3 }).kept).toBe(false);
  });
});

// Every example spec, parsed by the front end, runs through the reference
// without NaN on random inputs (needs the parser; skipped before it exists).
describe('examples through the reference', async () => {
  const parse = await import('../../src/compiler/syntax/parse.ts').catch(() => null);
  const files = readdirSync('examples').filter((f) => f.endsWith('.attn'));
  it.skipIf(!parse)('parse and evaluate without NaN', () => {
    for (const f of files) {
      const { file, diagnostics } = parse!.parseSpec(`examples/${f}`, readFileSync(`examples/${f}`, 'utf8'));
      expect(diagnostics.filter((d) => d.severity === 'error'), f).toEqual([]);
      for (const b of file.blocks) {
        const s = { B: 1, Hq: 4, Hkv: 2, Nq: 40, Nk: 48, D: 32 };
        const inputs = b.body.flatMap((st) => (st.kind === 'input' ? [{ name: st.name, elem: st.elem, axis: st.axis }] : []));
        const r = referenceAttention(b, { ...randomInputs(s, 1), ...s, tables: defaultTables(inputs, s, 1) });
        expect(r.o.some(Number.isNaN), `${f} ${b.name}`).toBe(false);
        expect(r.lse.some(Number.isNaN), `${f} ${b.name}`).toBe(false);
      }
    }
  });
});
