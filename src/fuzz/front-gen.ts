// Grammar-aware random specs for front-end fuzzing. Most are valid (typed
// expressions over every operator, function, builtin, param and table); with
// probability `mistakes` a piece is made slightly wrong (unknown name, wrong
// arity, bool used as a number, missing token, duplicate definition), so the
// checker's error paths run as often as the happy path.
import { makeRng, weighted, type Rng } from './rng.ts';

type T = 'i32' | 'f32' | 'bool';

const FUNCS1 = ['exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'abs', 'sign', 'floor', 'ceil'];
const FUNCS2 = ['min', 'max', 'pow', 'idiv'];
const AXES = ['heads', 'batch', 'q_len', 'kv_len'];
const I32_BUILTINS = ['q_idx', 'kv_idx', 'head', 'batch', 'q_len', 'kv_len', 'head_dim'];
/** Odd but legal-looking names, some of them keywords elsewhere. */
const NAMES = ['tau', 'w', 'x1', 'fn', 'var', 'float', 'lambda', 'None', 'a_b', 'Z', 'def', 'int', 'constructor', '__proto__', 'toString', 'long_name_' + 'x'.repeat(40)];

interface Scope { vars: Map<string, T>; tables: Map<string, T>; mistakes: number; r: Rng }

function literal(r: Rng, t: T): string {
  if (t === 'bool') return r.pick(['true', 'false']);
  if (t === 'i32') return String(weighted(r, [[8, r.int(0, 20)], [1, r.int(0, 2147483647)], [1, 0]]));
  return weighted(r, [[4, `${r.int(0, 99)}.${r.int(0, 99)}`], [2, `${r.int(1, 9)}e-${r.int(1, 8)}`], [1, `${r.int(1, 9)}e${r.int(1, 38)}`], [1, '0.0']]);
}

function expr(s: Scope, t: T, depth: number): string {
  const { r } = s;
  if (s.mistakes > 0 && r.chance(s.mistakes / 20)) return mistake(s, t, depth);
  const leaves = [...s.vars].filter(([, vt]) => vt === t).map(([n]) => n);
  if (t === 'i32') leaves.push(...I32_BUILTINS);
  if (t === 'f32') leaves.push('score');
  if (t === 'bool') leaves.push('causal');
  if (depth <= 0 || r.chance(0.25)) return r.chance(0.5) && leaves.length ? r.pick(leaves) : literal(r, t);
  const sub = (u: T) => expr(s, u, depth - 1);
  const num = (): T => (r.chance(0.5) ? 'i32' : 'f32');
  const tables = [...s.tables].filter(([, et]) => et === t).map(([n]) => n);
  switch (t) {
    case 'bool': return weighted(r, [
      [3, () => `${sub(num())} ${r.pick(['<', '<=', '>', '>=', '==', '!='])} ${sub(num())}`],
      [2, () => `${sub('bool')} ${r.pick(['&&', '||'])} ${sub('bool')}`],
      [1, () => `!${sub('bool')}`],
      [1, () => `(${sub('bool')})`],
      [1, () => `if ${sub('bool')} then ${sub('bool')} else ${sub('bool')}`],
    ])();
    case 'i32': return weighted(r, [
      [3, () => `${sub('i32')} ${r.pick(['+', '-', '*', '%'])} ${sub('i32')}`],
      [1, () => `-${sub('i32')}`],
      [1, () => `(${sub('i32')})`],
      [1, () => `${r.pick(['idiv', 'min', 'max'])}(${sub('i32')}, ${sub('i32')})`],
      [1, () => `clamp(${sub('i32')}, ${sub('i32')}, ${sub('i32')})`],
      [1, () => `if ${sub('bool')} then ${sub('i32')} else ${sub('i32')}`],
      [tables.length ? 1 : 0, () => `${r.pick(tables)}[${sub('i32')}]`],
    ])();
    case 'f32': return weighted(r, [
      [3, () => `${sub('f32')} ${r.pick(['+', '-', '*', '/'])} ${sub(num())}`],
      [1, () => `${sub('i32')} / ${sub('i32')}`],
      [2, () => `${r.pick(FUNCS1)}(${sub(num())})`],
      [1, () => `${r.pick(['min', 'max', 'pow'])}(${sub('f32')}, ${sub(num())})`],
      [1, () => `clamp(${sub('f32')}, ${sub(num())}, ${sub(num())})`],
      [1, () => `(${sub('f32')})`],
      [1, () => `if ${sub('bool')} then ${sub('f32')} else ${sub('f32')}`],
      [tables.length ? 1 : 0, () => `${r.pick(tables)}[${sub('i32')}]`],
    ])();
  }
}

/** A near-miss: something a user could plausibly type by mistake. */
function mistake(s: Scope, t: T, depth: number): string {
  const { r } = s;
  const ok = () => expr({ ...s, mistakes: 0 }, t, depth - 1);
  return r.pick([
    () => 'tua',                              // unknown name
    () => `${r.pick(FUNCS2)}(${ok()})`,       // wrong arity
    () => `frobnicate(${ok()})`,              // unknown function
    () => `true + ${ok()}`,                   // bool as number
    () => `${ok()} +`,                        // missing operand
    () => `(${ok()}`,                         // unclosed paren
    () => `${ok()} < ${ok()} < ${ok()}`,      // chained comparison
    () => `1e999`,                            // float overflow
    () => '99999999999999999999',             // int overflow
    () => `${ok()} ${r.pick(['&', '|', '=', '^', '**', '@'])} ${ok()}`,
    () => `${r.pick(FUNCS1)}()`,
  ])();
}

export interface FrontGenOptions { mistakes?: number; maxStatements?: number; maxDepth?: number }

/** One random spec file (one to three blocks). */
export function genFrontSpec(seed: number, o: FrontGenOptions = {}): string {
  const r = makeRng(seed);
  const blocks = weighted(r, [[6, 1], [1, 2], [1, 3]]);
  const out: string[] = [];
  for (let b = 0; b < blocks; b++) out.push(genBlock(r, `blk${b}`, o));
  return out.join('\n');
}

function genBlock(r: Rng, name: string, o: FrontGenOptions): string {
  const s: Scope = { vars: new Map(), tables: new Map(), mistakes: o.mistakes ?? 0.3, r };
  const depth = o.maxDepth ?? 4;
  const lines: string[] = [];
  const fresh = () => (r.chance(0.5) ? r.pick(NAMES) : `v${lines.length}`);
  const n = r.int(0, o.maxStatements ?? 8);
  for (let i = 0; i < n; i++) {
    weighted(r, [
      [2, () => { const v = fresh(); const it = r.chance(0.5); lines.push(it ? `param ${v}: i32 = ${r.int(0, 100)}` : `param ${v} = ${literal(r, 'f32')}`); s.vars.set(v, it ? 'i32' : 'f32'); }],
      [1, () => { const v = fresh(); const et: T = r.chance(0.5) ? 'i32' : 'f32'; lines.push(`input ${v}: ${et}[${r.pick(AXES)}]`); s.tables.set(v, et); }],
      [3, () => { const v = fresh(); const t = r.pick<T>(['i32', 'f32', 'bool']); lines.push(`let ${v} = ${expr(s, t, depth)}`); s.vars.set(v, t); }],
      [3, () => lines.push(`score = ${expr(s, 'f32', depth)}`)],
      [1, () => lines.push(`scale = ${expr({ ...s, vars: new Map([...s.vars].filter(() => true)) }, 'f32', 2).replace(/\bscore\b/g, '1.0')}`)],
      [2, () => lines.push(`mask ${expr(s, 'bool', depth)}`)],
      [1, () => lines.push(r.pick(['// a comment', '/* block\n comment */', '']))],
    ])();
  }
  const sep = r.chance(0.9) ? '\n  ' : r.pick([' ', '\n\n', '\r\n', '\t']);
  return `attention ${name} {${sep}${lines.join(sep)}\n}\n`;
}
