// Random VALID specs for differential fuzzing, built so that the float64
// reference and an f32 kernel must agree within compare.ts's tolerances.
//
// The rule (docs/NUMERICS.md, "What the differential fuzzer generates"):
//  1. Discontinuous operations (floor, ceil, sign, comparisons, `if`
//     conditions, masks, `%`, `idiv`) only ever see EXACT values: i32
//     expressions, and f32 values made from them by +, -, *, min, max, abs,
//     clamp, floor, ceil, sign (all exact below 2^24). f32 rounding can then
//     never flip a branch, a mask or a floor between f32 and f64.
//  2. Everything that reads `score` (or an inexact f32) is continuous, with
//     interval bounds: every f32 intermediate stays within +-FLOAT_CAP, the
//     final logit within +-LOGIT_CAP, and the derivative with respect to the
//     score within SLOPE_CAP, so that the f32 rounding of q.k (~1e-6) and of
//     each operation cannot add up to an O error near the tolerance.
//  3. Domains are respected by construction (log of a positive interval,
//     division by an interval away from zero), so the reference never gives
//     NaN and the comparison is never moot.
// Every function and operator of the DSL appears, each under the rule above.
import { makeRng, weighted, type Rng } from './rng.ts';

export const FLOAT_CAP = 40;
export const LOGIT_CAP = 40;
export const SLOPE_CAP = 6;
const INT_CAP = 1 << 20;

interface Val {
  text: string;
  t: 'i32' | 'f32' | 'bool';
  lo: number; hi: number;
  /** Reads the score (directly or through a let). */
  score: boolean;
  /** Bound on |d value / d score|. */
  slope: number;
  /** Exactly representable and computed exactly in f32 (see rule 1). */
  exact: boolean;
}

export interface ParamDecl { name: string; type: 'i32' | 'f32'; lo: number; hi: number; def: number }
export interface TableDecl { name: string; elem: 'i32' | 'f32'; axis: 'heads' | 'batch' | 'q_len' | 'kv_len'; lo: number; hi: number }

export interface DiffSpec {
  text: string;
  params: ParamDecl[];
  tables: TableDecl[];
  /** Interval of the raw score the spec was built for (q scale included). */
  scoreBound: number;
}

/** Sizes the generated shapes stay within (lengths 1..maxLen). */
export const MAX_LEN = 600;

const int = (text: string, lo: number, hi: number): Val => ({ text, t: 'i32', lo, hi, score: false, slope: 0, exact: true });

/**
 * Legal DSL names that mean something to a language the spec reaches (WGSL,
 * CUDA, Python, JavaScript, the generated code's own names), drawn now and
 * then so that every run also checks the renderers' mangling and the
 * runtime's name lookups (`constructor` once broke the float64 reference).
 */
const HOST_NAMES = ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty', 'fn', 'var', 'float', 'lambda', 'None', 'self', 'class', 'u', 'q', 'p_x', 'WGSL'];

class Gen {
  vars: Val[] = [];
  nameCount = 0;
  private readonly hostNamesLeft = [...HOST_NAMES];
  constructor(readonly r: Rng, public scoreVal: Val) {}

  fresh(prefix: string): string {
    if (this.hostNamesLeft.length && this.r.chance(0.15)) return this.hostNamesLeft.splice(Math.floor(this.r.next() * this.hostNamesLeft.length), 1)[0];
    return `${prefix}${this.nameCount++}`;
  }

  intLeaf(): Val {
    const r = this.r;
    const cands: Val[] = [
      int('q_idx', -MAX_LEN + 1, MAX_LEN - 1), int('kv_idx', 0, MAX_LEN - 1), int('head', 0, 7), int('batch', 0, 3),
      int('q_len', 1, MAX_LEN), int('kv_len', 1, MAX_LEN), int('head_dim', 32, 128),
      ...this.vars.filter((v) => v.t === 'i32'),
    ];
    if (r.chance(0.3)) { const k = r.int(-8, 17); return int(String(k), k, k); }
    return r.pick(cands);
  }

  /** An i32 expression (always exact). */
  intExpr(depth: number): Val {
    const r = this.r;
    if (depth <= 0 || r.chance(0.3)) return this.intLeaf();
    const a = this.intExpr(depth - 1);
    const b = this.intExpr(depth - 1);
    const op = r.pick(['+', '-', '*', '%', 'idiv', 'min', 'max', 'abs', 'sign', 'neg', 'clamp', 'if', 'table']);
    let v: Val;
    switch (op) {
      case '+': v = int(`(${a.text} + ${b.text})`, a.lo + b.lo, a.hi + b.hi); break;
      case '-': v = int(`(${a.text} - ${b.text})`, a.lo - b.hi, a.hi - b.lo); break;
      case '*': { const p = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]; v = int(`(${a.text} * ${b.text})`, Math.min(...p), Math.max(...p)); break; }
      // Divisors may be 0: the DSL defines x % 0 = idiv(x, 0) = 0, exactly, on every target.
      case '%': { const m = Math.max(Math.abs(b.lo), Math.abs(b.hi)); const lim = Math.min(Math.max(0, m - 1), Math.max(Math.abs(a.lo), Math.abs(a.hi))); v = int(`(${a.text} % ${b.text})`, a.lo < 0 ? -lim : 0, a.hi > 0 ? lim : 0); break; }
      case 'idiv': { const m = Math.max(Math.abs(a.lo), Math.abs(a.hi)); v = int(`idiv(${a.text}, ${b.text})`, -m, m); break; }
      case 'min': v = int(`min(${a.text}, ${b.text})`, Math.min(a.lo, b.lo), Math.min(a.hi, b.hi)); break;
      case 'max': v = int(`max(${a.text}, ${b.text})`, Math.max(a.lo, b.lo), Math.max(a.hi, b.hi)); break;
      case 'abs': v = int(`abs(${a.text})`, a.lo <= 0 && a.hi >= 0 ? 0 : Math.min(Math.abs(a.lo), Math.abs(a.hi)), Math.max(Math.abs(a.lo), Math.abs(a.hi))); break;
      case 'sign': v = int(`sign(${a.text})`, -1, 1); break;
      case 'neg': v = int(`-${a.text}`, -a.hi, -a.lo); break;
      case 'clamp': { const lo = r.int(-20, 20); const hi = lo + r.int(0, 64); v = int(`clamp(${a.text}, ${lo}, ${hi})`, lo, hi); break; }
      case 'if': { const c = this.boolExpr(depth - 1); v = int(`(if ${c.text} then ${a.text} else ${b.text})`, Math.min(a.lo, b.lo), Math.max(a.hi, b.hi)); break; }
      default: {
        const tabs = this.tables.filter((t) => t.elem === 'i32');
        if (!tabs.length) return a;
        const t = r.pick(tabs);
        v = int(`${t.name}[${a.text}]`, t.lo, t.hi);
      }
    }
    return Math.max(Math.abs(v.lo), Math.abs(v.hi)) > INT_CAP ? a : v;
  }

  tables: TableDecl[] = [];
  params: ParamDecl[] = [];

  /** A bool expression over exact values only (rule 1). */
  boolExpr(depth: number): Val {
    const r = this.r;
    const b = (text: string): Val => ({ text, t: 'bool', lo: 0, hi: 1, score: false, slope: 0, exact: true });
    const bools = this.vars.filter((v) => v.t === 'bool');
    if (depth <= 0 || r.chance(0.2)) {
      if (bools.length && r.chance(0.3)) return r.pick(bools);
      return b(r.pick(['causal', 'true', 'false', 'causal']));
    }
    switch (r.int(0, 5)) {
      case 0: return b(`(${this.boolExpr(depth - 1).text} ${r.pick(['&&', '||'])} ${this.boolExpr(depth - 1).text})`);
      case 1: return b(`!${this.boolExpr(depth - 1).text}`);
      case 2: return b(`(${this.boolExpr(depth - 1).text} ${r.pick(['==', '!='])} ${this.boolExpr(depth - 1).text})`);
      case 3: return b(`(if ${this.boolExpr(depth - 1).text} then ${this.boolExpr(depth - 1).text} else ${this.boolExpr(depth - 1).text})`);
      default: {
        const x = r.chance(0.8) ? this.intExpr(depth - 1) : this.exactFloat(depth - 1);
        const y = r.chance(0.8) ? this.intExpr(depth - 1) : this.exactFloat(depth - 1);
        return b(`(${x.text} ${r.pick(['<', '<=', '>', '>=', '==', '!='])} ${y.text})`);
      }
    }
  }

  /** An f32 value that is still exact: an int through floor/ceil/abs/min/max, or a dyadic literal. */
  exactFloat(depth: number): Val {
    const r = this.r;
    const a = this.intExpr(depth);
    const f = (text: string, lo: number, hi: number): Val => ({ text, t: 'f32', lo, hi, score: false, slope: 0, exact: true });
    switch (r.int(0, 4)) {
      case 0: return f(`floor(${a.text})`, a.lo, a.hi);
      case 1: return f(`ceil(${a.text})`, a.lo, a.hi);
      case 2: return f(`sign(${a.text} + 0.5)`, -1, 1);
      case 3: return f(`(${a.text} + 0.25)`, a.lo + 0.25, a.hi + 0.25);
      default: { const k = r.int(-16, 16) / 4; return f(k.toFixed(2), k, k); }
    }
  }

  /** A continuous f32 expression; may read the score (rule 2). */
  floatExpr(depth: number, allowScore: boolean): Val {
    const r = this.r;
    for (let attempt = 0; attempt < 8; attempt++) {
      const v = this.floatTry(depth, allowScore);
      if (v && Math.max(Math.abs(v.lo), Math.abs(v.hi)) <= FLOAT_CAP && v.slope <= SLOPE_CAP) return v;
    }
    const k = r.int(-8, 8) / 4;
    return { text: k.toFixed(2), t: 'f32', lo: k, hi: k, score: false, slope: 0, exact: true };
  }

  floatLeaf(allowScore: boolean): Val {
    const r = this.r;
    const fvars = this.vars.filter((v) => v.t === 'f32' && (allowScore || !v.score));
    const opts: (() => Val)[] = [
      () => { const k = Math.round((r.next() * 8 - 4) * 100) / 100; return { text: k.toFixed(2), t: 'f32', lo: k, hi: k, score: false, slope: 0, exact: false }; },
      () => { const i = this.intExpr(1); return { ...i, t: 'f32' as const, text: `(${i.text} + 0.0)` }; },
    ];
    if (fvars.length) opts.push(() => r.pick(fvars));
    const ps = this.params.filter((p) => p.type === 'f32');
    if (ps.length) opts.push(() => { const p = r.pick(ps); return { text: p.name, t: 'f32', lo: p.lo, hi: p.hi, score: false, slope: 0, exact: false }; });
    const ft = this.tables.filter((t) => t.elem === 'f32');
    if (ft.length) opts.push(() => { const t = r.pick(ft); return { text: `${t.name}[${this.intExpr(1).text}]`, t: 'f32', lo: t.lo, hi: t.hi, score: false, slope: 0, exact: false }; });
    if (allowScore) {
      opts.push(() => this.scoreVal, () => this.scoreVal, () => this.scoreVal);
    }
    return r.pick(opts)();
  }

  floatTry(depth: number, allowScore: boolean): Val | null {
    const r = this.r;
    if (depth <= 0 || r.chance(0.25)) return this.floatLeaf(allowScore);
    const sub = () => this.floatExpr(depth - 1, allowScore);
    const mk = (text: string, lo: number, hi: number, parts: Val[], slope: number): Val =>
      ({ text, t: 'f32', lo, hi, score: parts.some((p) => p.score), slope, exact: false });
    const op = r.pick(['+', '-', '*', '/', 'un1', 'un1', 'un1', 'min', 'max', 'clamp', 'pow', 'neg', 'if', 'idivf']);
    switch (op) {
      case '+': { const a = sub(), b = sub(); return mk(`(${a.text} + ${b.text})`, a.lo + b.lo, a.hi + b.hi, [a, b], a.slope + b.slope); }
      case '-': { const a = sub(), b = sub(); return mk(`(${a.text} - ${b.text})`, a.lo - b.hi, a.hi - b.lo, [a, b], a.slope + b.slope); }
      case '*': {
        const a = sub(), b = sub();
        const p = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
        const m = (x: Val) => Math.max(Math.abs(x.lo), Math.abs(x.hi));
        return mk(`(${a.text} * ${b.text})`, Math.min(...p), Math.max(...p), [a, b], m(a) * b.slope + m(b) * a.slope);
      }
      case '/': {
        // Divisor: a positive interval away from zero (|d| >= 0.5).
        const a = sub();
        const d = this.positive(depth - 1, allowScore, 0.5);
        const p = [a.lo / d.lo, a.lo / d.hi, a.hi / d.lo, a.hi / d.hi];
        const m = Math.max(Math.abs(a.lo), Math.abs(a.hi));
        return mk(`(${a.text} / ${d.text})`, Math.min(...p), Math.max(...p), [a, d], a.slope / d.lo + (m * d.slope) / (d.lo * d.lo));
      }
      case 'neg': { const a = sub(); return mk(`-${a.text}`, -a.hi, -a.lo, [a], a.slope); }
      case 'min': case 'max': { const a = sub(), b = sub(); const f = op === 'min' ? Math.min : Math.max; return mk(`${op}(${a.text}, ${b.text})`, f(a.lo, b.lo), f(a.hi, b.hi), [a, b], Math.max(a.slope, b.slope)); }
      case 'clamp': { const a = sub(); const lo = r.int(-16, 0) / 2; const hi = lo + r.int(1, 16) / 2; return mk(`clamp(${a.text}, ${lo.toFixed(1)}, ${hi.toFixed(1)})`, Math.max(lo, Math.min(a.lo, hi)), Math.min(hi, Math.max(a.hi, lo)), [a], a.slope); }
      case 'pow': {
        const base = this.positive(depth - 1, allowScore, 0.25);
        const y = r.pick([0.5, 1.5, 2, -0.5, 0.25, 3]);
        const ends = [base.lo ** y, base.hi ** y];
        const dy = Math.max(Math.abs(y) * base.lo ** (y - 1), Math.abs(y) * base.hi ** (y - 1));
        return mk(`pow(${base.text}, ${y.toFixed(2)})`, Math.min(...ends), Math.max(...ends), [base], dy * base.slope);
      }
      case 'if': {
        const c = this.boolExpr(depth - 1);
        const a = sub(), b = sub();
        return mk(`(if ${c.text} then ${a.text} else ${b.text})`, Math.min(a.lo, b.lo), Math.max(a.hi, b.hi), [a, b], Math.max(a.slope, b.slope));
      }
      case 'idivf': {
        // i32 arithmetic promoted to f32 (mixed operands) and real `/` of ints.
        const i = this.intExpr(depth - 1);
        const a = sub();
        return mk(`(${a.text} + ${i.text} / 64)`, a.lo + i.lo / 64, a.hi + i.hi / 64, [a], a.slope);
      }
      default: return this.unary(depth, allowScore);
    }
  }

  /** A value with interval inside [min, ...): abs(x) + min, or a positive param. */
  positive(depth: number, allowScore: boolean, min: number): Val {
    const a = this.floatExpr(depth, allowScore);
    if (a.lo >= min) return a;
    const lo = a.lo <= 0 && a.hi >= 0 ? 0 : Math.min(Math.abs(a.lo), Math.abs(a.hi));
    const hi = Math.max(Math.abs(a.lo), Math.abs(a.hi));
    return { text: `(abs(${a.text}) + ${min.toFixed(2)})`, t: 'f32', lo: lo + min, hi: hi + min, score: a.score, slope: a.slope, exact: false };
  }

  unary(depth: number, allowScore: boolean): Val {
    const r = this.r;
    const fn = r.pick(['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'abs', 'exact']);
    const mk = (text: string, lo: number, hi: number, a: Val, d: number): Val =>
      ({ text, t: 'f32', lo, hi, score: a.score, slope: a.slope * d, exact: false });
    switch (fn) {
      case 'exp': case 'exp2': {
        const a = this.floatExpr(depth - 1, allowScore);
        const f = fn === 'exp' ? Math.exp : (x: number) => 2 ** x;
        return mk(`${fn}(${a.text})`, f(a.lo), f(a.hi), a, f(a.hi) * (fn === 'exp' ? 1 : Math.LN2));
      }
      case 'log': case 'log2': {
        const a = this.positive(depth - 1, allowScore, 0.5);
        const f = fn === 'log' ? Math.log : Math.log2;
        return mk(`${fn}(${a.text})`, f(a.lo), f(a.hi), a, (1 / a.lo) * (fn === 'log' ? 1 : 1 / Math.LN2));
      }
      case 'log1p': { const a = this.positive(depth - 1, allowScore, 0); return mk(`log1p(${a.text})`, Math.log1p(a.lo), Math.log1p(a.hi), a, 1 / (1 + a.lo)); }
      case 'sqrt': { const a = this.positive(depth - 1, allowScore, 0.25); return mk(`sqrt(${a.text})`, Math.sqrt(a.lo), Math.sqrt(a.hi), a, 0.5 / Math.sqrt(a.lo)); }
      case 'rsqrt': { const a = this.positive(depth - 1, allowScore, 0.25); return mk(`rsqrt(${a.text})`, 1 / Math.sqrt(a.hi), 1 / Math.sqrt(a.lo), a, 0.5 * a.lo ** -1.5); }
      case 'tanh': { const a = this.floatExpr(depth - 1, allowScore); return mk(`tanh(${a.text})`, Math.tanh(a.lo), Math.tanh(a.hi), a, 1); }
      case 'sigmoid': { const a = this.floatExpr(depth - 1, allowScore); const s = (x: number) => 1 / (1 + Math.exp(-x)); return mk(`sigmoid(${a.text})`, s(a.lo), s(a.hi), a, 0.25); }
      case 'abs': { const a = this.floatExpr(depth - 1, allowScore); const lo = a.lo <= 0 && a.hi >= 0 ? 0 : Math.min(Math.abs(a.lo), Math.abs(a.hi)); return mk(`abs(${a.text})`, lo, Math.max(Math.abs(a.lo), Math.abs(a.hi)), a, 1); }
      default: return this.exactFloat(depth - 1);
    }
  }
}

export interface DiffGenOptions { maxStatements?: number; depth?: number; /** Raw score bound (7 for unit inputs). */ scoreBound?: number }

/** A random valid spec and the declarations the runner needs to fill params and tables. */
export function genDiffSpec(seed: number, o: DiffGenOptions = {}): DiffSpec {
  const r = makeRng(seed);
  const depth = o.depth ?? 3;
  const bound = o.scoreBound ?? 7;
  const g = new Gen(r, { text: 'score', t: 'f32', lo: -bound, hi: bound, score: true, slope: 1, exact: false });
  const lines: string[] = [];
  // Declarations first so every later expression can use them.
  for (let i = r.int(0, 2); i > 0; i--) {
    const name = g.fresh('p');
    if (r.chance(0.5)) {
      const lo = r.pick([0.5, 1, 2]); const hi = lo * r.pick([1, 4, 16]);
      const def = Math.round((lo + (hi - lo) * r.next()) * 8) / 8;
      g.params.push({ name, type: 'f32', lo, hi, def });
      lines.push(`param ${name} = ${def.toFixed(3)}`);
    } else {
      const def = r.int(0, 64);
      g.params.push({ name, type: 'i32', lo: -8, hi: 64, def });
      lines.push(`param ${name}: i32 = ${def}`);
      g.vars.push(int(name, -8, 64));
    }
  }
  for (let i = weighted(r, [[3, 0], [2, 1], [1, 2]]); i > 0; i--) {
    const name = g.fresh('t');
    const elem = r.pick(['i32', 'f32'] as const);
    const axis = r.pick(['heads', 'batch', 'q_len', 'kv_len'] as const);
    g.tables.push({ name, elem, axis, lo: elem === 'i32' ? 0 : -1, hi: elem === 'i32' ? 7 : 1 });
    lines.push(`input ${name}: ${elem}[${axis}]`);
  }
  if (r.chance(0.15)) lines.push(`scale = ${r.pick(['0.5', '1.5', '1.0'])} * rsqrt(head_dim + 0.0)`);
  const n = r.int(1, o.maxStatements ?? 5);
  for (let i = 0; i < n; i++) {
    weighted(r, [
      [2, () => { const v = r.chance(0.5) ? g.intExpr(depth) : r.chance(0.3) ? g.boolExpr(depth) : g.floatExpr(depth, r.chance(0.5)); const name = g.fresh('v'); lines.push(`let ${name} = ${v.text}`); g.vars.push({ ...v, text: name }); }],
      [3, () => assignScore(g, r, depth, lines)],
      [2, () => lines.push(`mask ${maskExpr(g, r, depth)}`)],
    ])();
  }
  if (!lines.some((l) => l.startsWith('score ='))) assignScore(g, r, depth, lines);
  const text = `// generated by src/fuzz/diff-gen.ts, seed ${seed}\nattention fuzz {\n${lines.map((l) => `  ${l}`).join('\n')}\n}\n`;
  return { text, params: g.params, tables: g.tables, scoreBound: bound };
}

function assignScore(g: Gen, r: Rng, depth: number, lines: string[]): void {
  for (let attempt = 0; attempt < 10; attempt++) {
    const v = r.chance(0.4) ? affine(g, depth) : g.floatExpr(depth, true);
    if (Math.max(Math.abs(v.lo), Math.abs(v.hi)) <= LOGIT_CAP && v.slope <= SLOPE_CAP) {
      lines.push(`score = ${v.text}`);
      g.scoreVal = { ...v, text: 'score', t: 'f32' };
      return;
    }
  }
}

/** `score * A + B` with A, B free of the score: the affine form KERNELS.md folds. */
function affine(g: Gen, depth: number): Val {
  const a = g.floatExpr(depth - 1, false);
  const b = g.floatExpr(depth - 1, false);
  const s = g.scoreVal;
  const p = [s.lo * a.lo, s.lo * a.hi, s.hi * a.lo, s.hi * a.hi];
  const m = Math.max(Math.abs(a.lo), Math.abs(a.hi));
  return { text: `score * ${a.text} + ${b.text}`, t: 'f32', lo: Math.min(...p) + b.lo, hi: Math.max(...p) + b.hi, score: true, slope: s.slope * m, exact: false };
}

/** Masks: the usual shapes (causal, windows, sinks, prefixes, documents), row killers, tile killers, and random ones. */
function maskExpr(g: Gen, r: Rng, depth: number): string {
  const ip = g.params.filter((p) => p.type === 'i32').map((p) => p.name);
  const w = () => (ip.length && r.chance(0.5) ? r.pick(ip) : String(r.int(1, 80)));
  const docs = g.tables.filter((t) => t.elem === 'i32' && (t.axis === 'kv_len' || t.axis === 'q_len')).map((t) => t.name);
  return weighted(r, [
    [2, () => 'causal'],
    [2, () => `causal && q_idx - kv_idx < ${w()}`],
    [1, () => `causal && (q_idx - kv_idx < ${w()} || kv_idx < ${r.int(0, 8)})`],
    [1, () => `causal || kv_idx < ${w()}`],
    [docs.length ? 2 : 0, () => `${r.pick(docs)}[q_idx] == ${r.pick(docs)}[kv_idx]`],
    // Whole rows masked: some heads see nothing, early queries see nothing.
    [1, () => r.pick([`head != ${r.int(0, 3)}`, `q_idx >= ${r.int(1, 40)}`, `kv_idx + ${r.int(1, 40)} <= q_idx`, `batch == 0 || head % 2 == 1`])],
    // Whole tiles masked (tiles of 16..64 keys) and everything masked.
    [1, () => r.pick([`idiv(kv_idx, ${r.pick([16, 32, 64])}) % 2 == 0`, `kv_idx < 32 || kv_idx >= 96`, 'false', 'kv_idx < 0', `idiv(q_idx, 64) != 1`])],
    [3, () => g.boolExpr(depth).text],
  ])();
}
