// Random well-typed DSL expressions (seeded), and an independent float64
// evaluator of the AST with the typing.ts semantics, for the property tests.
import type { Expr, ValueType } from '../../src/compiler/syntax/ast.ts';
import { at, bin, bool, call, iff, input, int, param, real, un, v } from './ast-builder.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenOptions { score: boolean; tables: boolean; bigInts?: boolean }

const BIG = [2 ** 30, -(2 ** 30), 2 ** 31 - 1, -(2 ** 31) + 1, 46341, 1 << 16];

export function genExpr(r: () => number, type: ValueType, depth: number, o: GenOptions): Expr {
  const pick = <T,>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const num = (): ValueType => (r() < 0.5 ? 'i32' : 'f32');
  const g = (t: ValueType) => genExpr(r, t, depth - 1, o);
  if (depth <= 0 || r() < 0.2) {
    if (type === 'bool') return bool(r() < 0.5);
    if (type === 'i32') {
      const names = ['q_idx', 'kv_idx', 'head', 'window', 'lit', 'lit'];
      const n = pick(names);
      if (n !== 'lit') return v(n);
      return int(o.bigInts && r() < 0.15 ? pick(BIG) : Math.floor(r() * 11) - 5);
    }
    const n = pick(['tau', 'lit', 'lit', ...(o.score ? ['score', 'score'] : [])]);
    return n === 'lit' ? real((Math.floor(r() * 17) - 8) / 4) : v(n);
  }
  if (type === 'bool') {
    switch (Math.floor(r() * 6)) {
      case 0: return bin(pick(['&&', '||'] as const), g('bool'), g('bool'));
      case 1: return un('!', g('bool'));
      case 2: return bin(pick(['==', '!='] as const), g('bool'), g('bool'));
      case 3: return iff(g('bool'), g('bool'), g('bool'));
      default: { const t = r() < 0.7 ? 'i32' : num(); return bin(pick(['<', '<=', '>', '>=', '==', '!='] as const), g(t), g(r() < 0.8 ? t : num())); }
    }
  }
  if (type === 'i32') {
    switch (Math.floor(r() * 8)) {
      case 0: case 1: return bin(pick(['+', '-', '*', '%'] as const), g('i32'), g('i32'));
      case 2: return un('-', g('i32'));
      case 3: return call(pick(['idiv', 'min', 'max']), g('i32'), g('i32'));
      case 4: return call(pick(['abs', 'sign']), g('i32'));
      case 5: return call('clamp', g('i32'), g('i32'), g('i32'));
      case 6: return iff(g('bool'), g('i32'), g('i32'));
      default: return o.tables ? at('ti', g('i32')) : bin('-', v('q_idx'), v('kv_idx'));
    }
  }
  switch (Math.floor(r() * 9)) {
    case 0: case 1: { const f32First = r() < 0.5; return bin(pick(['+', '-', '*'] as const), f32First ? g('f32') : g(num()), f32First ? g(num()) : g('f32')); }
    case 2: return bin('/', g(num()), g(num()));
    case 3: return call(pick(['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'floor', 'ceil']), g(num()));
    case 4: return call(pick(['abs', 'sign']), g('f32'));
    case 5: return call(pick(['min', 'max', 'pow']), g('f32'), g(num()));
    case 6: return un('-', g('f32'));
    case 7: return iff(g('bool'), g('f32'), g(num()));
    default: return o.tables ? at('tf', g('i32')) : call('clamp', g('f32'), g(num()), g(num()));
  }
}

export interface AstEnv {
  dot: number; q_idx: number; kv_idx: number; head: number; head_dim: number;
  window: number; tau: number; ti: number[]; tf: number[];
}

type V = { v: number | boolean; t: ValueType };
const REAL = new Set(['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'floor', 'ceil', 'pow']);

/** Direct float64 evaluation of the AST (i32 ops wrap; f32 values kept in float64). */
export function evalAst(e: Expr, env: AstEnv): V {
  switch (e.kind) {
    case 'number': return { v: e.isInt ? e.value | 0 : e.value, t: e.isInt ? 'i32' : 'f32' };
    case 'bool': return { v: e.value, t: 'bool' };
    case 'name':
      if (e.name === 'score') return { v: env.dot * (1 / Math.sqrt(env.head_dim)), t: 'f32' };
      if (e.name === 'tau') return { v: env.tau, t: 'f32' };
      return { v: (env as unknown as Record<string, number>)[e.name], t: 'i32' };
    case 'unary': {
      const x = evalAst(e.arg, env);
      if (e.op === '!') return { v: !x.v, t: 'bool' };
      return { v: x.t === 'i32' ? -(x.v as number) | 0 : -(x.v as number), t: x.t };
    }
    case 'binary': {
      const l = evalAst(e.left, env), r = evalAst(e.right, env);
      const a = l.v as number, b = r.v as number;
      const int = l.t === 'i32' && r.t === 'i32';
      switch (e.op) {
        case '&&': return { v: (l.v as boolean) && (r.v as boolean), t: 'bool' };
        case '||': return { v: (l.v as boolean) || (r.v as boolean), t: 'bool' };
        case '==': return { v: l.v === r.v, t: 'bool' };
        case '!=': return { v: l.v !== r.v, t: 'bool' };
        case '<': return { v: a < b, t: 'bool' };
        case '<=': return { v: a <= b, t: 'bool' };
        case '>': return { v: a > b, t: 'bool' };
        case '>=': return { v: a >= b, t: 'bool' };
        case '+': return int ? { v: (a + b) | 0, t: 'i32' } : { v: a + b, t: 'f32' };
        case '-': return int ? { v: (a - b) | 0, t: 'i32' } : { v: a - b, t: 'f32' };
        case '*': return int ? { v: Math.imul(a, b), t: 'i32' } : { v: a * b, t: 'f32' };
        case '/': return { v: a / b, t: 'f32' };
        case '%': return { v: b === 0 ? 0 : (a % b) | 0, t: 'i32' };
      }
      throw new Error('bad op');
    }
    case 'call': {
      const xs = e.args.map((x) => evalAst(x, env));
      const n = xs.map((x) => x.v as number);
      const int = xs.every((x) => x.t === 'i32');
      const t: ValueType = REAL.has(e.fn) ? 'f32' : e.fn === 'abs' || e.fn === 'sign' ? xs[0].t : int ? 'i32' : 'f32';
      const fns: Record<string, () => number> = {
        exp: () => Math.exp(n[0]), exp2: () => Math.pow(2, n[0]), log: () => Math.log(n[0]), log2: () => Math.log2(n[0]),
        log1p: () => Math.log1p(n[0]), sqrt: () => Math.sqrt(n[0]), rsqrt: () => 1 / Math.sqrt(n[0]), tanh: () => Math.tanh(n[0]),
        sigmoid: () => 1 / (1 + Math.exp(-n[0])), floor: () => Math.floor(n[0]), ceil: () => Math.ceil(n[0]),
        pow: () => Math.pow(n[0], n[1]), abs: () => (t === 'i32' ? Math.abs(n[0]) | 0 : Math.abs(n[0])),
        sign: () => Math.sign(n[0]), min: () => Math.min(n[0], n[1]), max: () => Math.max(n[0], n[1]),
        clamp: () => Math.min(Math.max(n[0], n[1]), n[2]), idiv: () => (n[1] === 0 ? 0 : (n[0] / n[1]) | 0),
      };
      return { v: fns[e.fn](), t };
    }
    case 'index': {
      const tab = e.table === 'ti' ? env.ti : env.tf;
      const i = evalAst(e.index, env).v as number;
      return { v: tab[Math.max(0, Math.min(tab.length - 1, i))], t: e.table === 'ti' ? 'i32' : 'f32' };
    }
    case 'if': {
      const c = evalAst(e.cond, env), a = evalAst(e.then, env), b = evalAst(e.else, env);
      const t: ValueType = a.t === b.t ? a.t : 'f32';
      return { v: c.v ? a.v : b.v, t };
    }
  }
}

export const DECLS = [param('window', 'i32', int(7)), param('tau', 'f32', real(10)), input('ti', 'i32', 'q_len'), input('tf', 'f32', 'kv_len')];

export function randomEnv(r: () => number): AstEnv {
  const i = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  return {
    dot: (i(-64, 64) / 8), q_idx: i(-3, 40), kv_idx: i(-3, 40), head: i(0, 3), head_dim: 64,
    window: r() < 0.1 ? 2 ** 31 - 1 : i(-5, 50), tau: i(1, 40) / 4,
    ti: Array.from({ length: 8 }, () => i(-10, 10)), tf: Array.from({ length: 8 }, () => i(-20, 20) / 4),
  };
}

export function irEnv(env: AstEnv) {
  return {
    dot: env.dot,
    builtins: { q_idx: env.q_idx, kv_idx: env.kv_idx, head: env.head, head_dim: env.head_dim, batch: 0, q_len: 41, kv_len: 41 },
    params: { window: env.window, tau: env.tau },
    tables: { ti: env.ti, tf: env.tf },
  };
}

