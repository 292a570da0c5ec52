// The spec evaluator of the float64 reference: the AST turned once into a
// tree of closures (a closure-compiling tree-walking interpreter) following
// the DSL semantics of typing.ts: i32 arithmetic wraps to 32 bits, `/` is
// real division, `%` and idiv truncate toward zero and give 0 for a zero
// divisor, table indices are clamped, everything "f32" is float64.
// It deliberately does not use the IR (see reference.ts).
import type { AttentionBlock, BinaryOp, Expr, Stmt, TableAxis, ValueType } from '../compiler/syntax/ast.ts';
import { AXIS_SIZE, BUILTIN_TYPES, FUNCTION_ARITY, assertNever } from '../compiler/syntax/ast.ts';
import { binaryType, callType, ifType, unaryType } from '../compiler/syntax/typing.ts';
import { own } from '../compiler/own.ts';

export type Table = Int32Array | Float32Array | Float64Array;
export const enum Cls { PerHead = 0, PerRow = 1, PerPair = 2 }

/** The mutable state the closures read; one per evaluation run. */
export interface Ctx {
  qIdx: number; kvIdx: number; head: number; batch: number;
  qLen: number; kvLen: number; headDim: number;
  params: Float64Array;
  tables: Table[];
  /** The raw dot(q, k) of the current pair (before scale). */
  rawDot: (c: Ctx) => number;
  /** Memo of slots: a slot is valid when slotGen[i] === gens[its class]. */
  slotVal: Float64Array;
  slotGen: Float64Array;
  gens: Float64Array;
  counter: number;
  /** For the attention loop's rawDot: the query row, the K block, the key's offset in it. */
  qRow: Float64Array; kBlock: Float64Array; kOff: number;
}

type Fn = (c: Ctx) => number;
interface Compiled { fn: Fn; type: ValueType; cls: Cls; readsScore: boolean }

type Binding =
  | { kind: 'param'; index: number; type: ValueType }
  | { kind: 'table'; index: number; type: ValueType }
  | { kind: 'slot'; value: Compiled };

export interface ParamInfo { name: string; type: 'f32' | 'i32'; default: Fn }
export interface TableInfo { name: string; elem: 'f32' | 'i32'; axis: TableAxis }

/** A block compiled to closures; reusable for any sizes and arguments. */
export interface CompiledBlock {
  params: ParamInfo[];
  tables: TableInfo[];
  /** Masks that depend only on (batch, head) and the query row. */
  rowMasks: Fn[];
  /** Masks that depend on the key (or on the score). */
  pairMasks: Fn[];
  /** The final, transformed logit. */
  logit: Fn;
  slotCount: number;
}

// An already-checked spec is at most 256 deep; this only turns a runaway
// input into a clear error instead of a stack overflow.
const MAX_DEPTH = 4000;

const cache = new WeakMap<AttentionBlock, CompiledBlock>();

export function compileBlock(block: AttentionBlock): CompiledBlock {
  const hit = cache.get(block);
  if (hit) return hit;
  const compiled = new BlockCompiler(block).run();
  cache.set(block, compiled);
  return compiled;
}

class BlockCompiler {
  private scope = new Map<string, Binding>();
  private slotCount = 0;
  private params: ParamInfo[] = [];
  private tables: TableInfo[] = [];
  private masks: Compiled[] = [];
  private scale: Compiled | undefined;

  constructor(private block: AttentionBlock) {}

  run(): CompiledBlock {
    // score version 0 = dot * scale, where scale is the last `scale =` of the
    // block (or 1/sqrt(head_dim)); it is looked up lazily, at evaluation time.
    let scaleFn: Fn = (c) => 1 / Math.sqrt(c.headDim);
    const score0 = this.slot({
      fn: (c) => c.rawDot(c) * scaleFn(c), type: 'f32', cls: Cls.PerPair, readsScore: true,
    });
    let score = score0;
    for (const stmt of this.block.body) score = this.stmt(stmt, score);
    if (this.scale) {
      if (this.scale.readsScore) this.fail('`scale` depends on `score`');
      scaleFn = this.scale.fn;
    }
    const rowMasks = this.masks.filter((m) => m.cls <= Cls.PerRow).map((m) => m.fn);
    const pairMasks = this.masks.filter((m) => m.cls > Cls.PerRow).map((m) => m.fn);
    return { params: this.params, tables: this.tables, rowMasks, pairMasks, logit: score.fn, slotCount: this.slotCount };
  }

  private stmt(s: Stmt, score: Compiled): Compiled {
    switch (s.kind) {
      case 'param': {
        const def = this.expr(s.default, score, 0);
        this.define(s.name, { kind: 'param', index: this.params.length, type: s.type });
        this.params.push({ name: s.name, type: s.type, default: def.fn });
        return score;
      }
      case 'input':
        this.define(s.name, { kind: 'table', index: this.tables.length, type: s.elem });
        this.tables.push({ name: s.name, elem: s.elem, axis: s.axis });
        return score;
      case 'let':
        this.define(s.name, { kind: 'slot', value: this.slot(this.expr(s.value, score, 0)) });
        return score;
      case 'assign': {
        const value = this.slot(this.expr(s.value, score, 0));
        if (s.target === 'scale') {
          this.scale = value;
          return score;
        }
        return { ...value, readsScore: true };
      }
      case 'mask': {
        const cond = this.expr(s.cond, score, 0);
        if (cond.type !== 'bool') this.fail('a mask is not bool');
        this.masks.push(cond);
        return score;
      }
      default:
        return assertNever(s, 'statement');
    }
  }

  private define(name: string, b: Binding): void {
    if (this.scope.has(name) || name in BUILTIN_TYPES) this.fail(`'${name}' is defined twice`);
    this.scope.set(name, b);
  }

  /** Wraps a value in a memoized slot cached at its dependency class. */
  private slot(v: Compiled): Compiled {
    const i = this.slotCount++;
    const inner = v.fn;
    const cls = v.cls;
    const fn: Fn = (c) => {
      const g = c.gens[cls];
      if (c.slotGen[i] === g) return c.slotVal[i];
      const x = inner(c);
      c.slotGen[i] = g;
      c.slotVal[i] = x;
      return x;
    };
    return { fn, type: v.type, cls, readsScore: v.readsScore };
  }

  private fail(msg: string): never {
    throw new Error(`reference: attention ${this.block.name}: ${msg} (the spec should have been checked first)`);
  }

  private expr(e: Expr, score: Compiled, depth: number): Compiled {
    if (depth > MAX_DEPTH) this.fail(`expression nested deeper than ${MAX_DEPTH}`);
    const d = depth + 1;
    switch (e.kind) {
      case 'number': {
        const v = e.isInt ? e.value | 0 : e.value;
        return { fn: () => v, type: e.isInt ? 'i32' : 'f32', cls: Cls.PerHead, readsScore: false };
      }
      case 'bool': {
        const v = e.value ? 1 : 0;
        return { fn: () => v, type: 'bool', cls: Cls.PerHead, readsScore: false };
      }
      case 'name':
        return this.name(e.name, score);
      case 'unary': {
        const a = this.expr(e.arg, score, d);
        const t = unaryType(e.op, a.type);
        if (!t.ok) this.fail(`operand of '${e.op}' must be ${t.expected}`);
        const f = a.fn;
        const fn: Fn = e.op === '!' ? (c) => (f(c) ? 0 : 1) : a.type === 'i32' ? (c) => -f(c) | 0 : (c) => -f(c);
        return { ...a, fn, type: t.type };
      }
      case 'binary': {
        const l = this.expr(e.left, score, d);
        const r = this.expr(e.right, score, d);
        const t = binaryType(e.op, l.type, r.type);
        if (!t.ok) this.fail(`operands of '${e.op}' must be ${t.expected}`);
        return { fn: binaryFn(e.op, t.type === 'i32', l.fn, r.fn), type: t.type, ...join([l, r]) };
      }
      case 'call': {
        if (FUNCTION_ARITY[e.fn] !== e.args.length) this.fail(`bad call of '${e.fn}'`);
        const args = e.args.map((a) => this.expr(a, score, d));
        const t = callType(e.fn, args.map((a) => a.type));
        if (!t.ok) this.fail(`${e.fn}() needs ${t.expected}`);
        return { fn: callFn(e.fn, t.type === 'i32', args.map((a) => a.fn)), type: t.type, ...join(args) };
      }
      case 'index': {
        const b = this.scope.get(e.table);
        if (!b || b.kind !== 'table') this.fail(`'${e.table}' is not a table`);
        const idx = this.expr(e.index, score, d);
        if (idx.type !== 'i32') this.fail('a table index must be i32');
        const ti = (b as { index: number }).index;
        const f = idx.fn;
        const fn: Fn = (c) => {
          const t = c.tables[ti];
          const j = f(c);
          return t[j < 0 ? 0 : j >= t.length ? t.length - 1 : j];
        };
        return { fn, type: (b as { type: ValueType }).type, cls: idx.cls, readsScore: idx.readsScore };
      }
      case 'if': {
        const cond = this.expr(e.cond, score, d);
        const a = this.expr(e.then, score, d);
        const b = this.expr(e.else, score, d);
        const t = ifType(a.type, b.type);
        if (cond.type !== 'bool' || !t.ok) this.fail('ill-typed if');
        const fc = cond.fn, fa = a.fn, fb = b.fn;
        return { fn: (c) => (fc(c) ? fa(c) : fb(c)), type: t.type, ...join([cond, a, b]) };
      }
      default:
        return assertNever(e, 'expression');
    }
  }

  private name(name: string, score: Compiled): Compiled {
    const head = (fn: Fn): Compiled => ({ fn, type: 'i32', cls: Cls.PerHead, readsScore: false });
    switch (name) {
      case 'score': return score;
      case 'q_idx': return { fn: (c) => c.qIdx, type: 'i32', cls: Cls.PerRow, readsScore: false };
      case 'kv_idx': return { fn: (c) => c.kvIdx, type: 'i32', cls: Cls.PerPair, readsScore: false };
      case 'causal': return { fn: (c) => (c.kvIdx <= c.qIdx ? 1 : 0), type: 'bool', cls: Cls.PerPair, readsScore: false };
      case 'head': return head((c) => c.head);
      case 'batch': return head((c) => c.batch);
      case 'q_len': return head((c) => c.qLen);
      case 'kv_len': return head((c) => c.kvLen);
      case 'head_dim': return head((c) => c.headDim);
    }
    const b = this.scope.get(name);
    if (!b) return this.fail(`unknown name '${name}'`);
    if (b.kind === 'slot') return b.value;
    if (b.kind === 'table') return this.fail(`table '${name}' used without an index`);
    const i = b.index;
    return { fn: (c) => c.params[i], type: b.type, cls: Cls.PerHead, readsScore: false };
  }
}

function join(parts: Compiled[]): { cls: Cls; readsScore: boolean } {
  let cls = Cls.PerHead;
  let readsScore = false;
  for (const p of parts) {
    if (p.cls > cls) cls = p.cls;
    readsScore ||= p.readsScore;
  }
  return { cls, readsScore };
}

/** Integer division and modulo of the DSL: truncated, 0 for a zero divisor. */
export const idiv = (a: number, b: number): number => (b === 0 ? 0 : Math.trunc(a / b) | 0);
export const imod = (a: number, b: number): number => (b === 0 ? 0 : (a % b) | 0);

function binaryFn(op: BinaryOp, int: boolean, f: Fn, g: Fn): Fn {
  switch (op) {
    case '+': return int ? (c) => (f(c) + g(c)) | 0 : (c) => f(c) + g(c);
    case '-': return int ? (c) => (f(c) - g(c)) | 0 : (c) => f(c) - g(c);
    case '*': return int ? (c) => Math.imul(f(c), g(c)) : (c) => f(c) * g(c);
    case '/': return (c) => f(c) / g(c);
    case '%': return (c) => imod(f(c), g(c));
    case '<': return (c) => (f(c) < g(c) ? 1 : 0);
    case '<=': return (c) => (f(c) <= g(c) ? 1 : 0);
    case '>': return (c) => (f(c) > g(c) ? 1 : 0);
    case '>=': return (c) => (f(c) >= g(c) ? 1 : 0);
    case '==': return (c) => (f(c) === g(c) ? 1 : 0);
    case '!=': return (c) => (f(c) !== g(c) ? 1 : 0);
    // Short-circuit: the same value, and later operands may skip work.
    case '&&': return (c) => (f(c) ? g(c) : 0);
    case '||': return (c) => (f(c) ? 1 : g(c));
    default: return assertNever(op, 'operator');
  }
}

function callFn(name: string, int: boolean, a: Fn[]): Fn {
  const [f, g, h] = a;
  switch (name) {
    case 'exp': return (c) => Math.exp(f(c));
    case 'exp2': return (c) => 2 ** f(c);
    case 'log': return (c) => Math.log(f(c));
    case 'log2': return (c) => Math.log2(f(c));
    case 'log1p': return (c) => Math.log1p(f(c));
    case 'sqrt': return (c) => Math.sqrt(f(c));
    case 'rsqrt': return (c) => 1 / Math.sqrt(f(c));
    case 'tanh': return (c) => Math.tanh(f(c));
    case 'sigmoid': return (c) => 1 / (1 + Math.exp(-f(c)));
    case 'floor': return (c) => Math.floor(f(c));
    case 'ceil': return (c) => Math.ceil(f(c));
    case 'pow': return (c) => Math.pow(f(c), g(c));
    // abs(-2^31) wraps to -2^31 in i32, as on the GPU.
    case 'abs': return int ? (c) => Math.abs(f(c)) | 0 : (c) => Math.abs(f(c));
    case 'sign': return (c) => Math.sign(f(c));
    case 'min': return (c) => Math.min(f(c), g(c));
    case 'max': return (c) => Math.max(f(c), g(c));
    // min(max(x, lo), hi), as WGSL and CUDA define clamp (hi wins if lo > hi).
    case 'clamp': return (c) => Math.min(Math.max(f(c), g(c)), h(c));
    case 'idiv': return (c) => idiv(f(c), g(c));
  }
  throw new Error(`reference: unknown function '${name}'`);
}

// ---------------------------------------------------------------------------
// Binding arguments

export function newCtx(cb: CompiledBlock, sizes: { qLen: number; kvLen: number; headDim: number }): Ctx {
  return {
    qIdx: 0, kvIdx: 0, head: 0, batch: 0, ...sizes,
    params: new Float64Array(cb.params.length),
    tables: [],
    rawDot: () => NaN,
    slotVal: new Float64Array(cb.slotCount),
    slotGen: new Float64Array(cb.slotCount).fill(-1),
    gens: new Float64Array(3),
    counter: 0,
    qRow: new Float64Array(0), kBlock: new Float64Array(0), kOff: 0,
  };
}

/** Starts a new memo generation for `cls` and every finer class. */
export function bump(c: Ctx, cls: Cls): void {
  for (let i = cls; i <= Cls.PerPair; i++) c.gens[i] = ++c.counter;
}

export function bindParams(cb: CompiledBlock, c: Ctx, given: Record<string, number>, who: string): void {
  const known = new Set(cb.params.map((p) => p.name));
  for (const name of Object.keys(given)) {
    if (!known.has(name)) throw new Error(`${who}: unknown param '${name}' (the spec has: ${[...known].join(', ') || 'none'})`);
  }
  bump(c, Cls.PerHead);
  cb.params.forEach((p, i) => {
    let v = own(given, p.name);
    if (v === undefined) v = p.default(c);
    else if (p.type === 'i32' && !Number.isInteger(v)) throw new Error(`${who}: param '${p.name}' is i32 but was given ${v}`);
    c.params[i] = p.type === 'i32' ? v | 0 : v;
  });
}

export function bindTables(cb: CompiledBlock, c: Ctx, given: Record<string, Table>, sizes: { B: number; Hq: number; Nq: number; Nk: number } | null, who: string): void {
  c.tables = cb.tables.map((t) => {
    const arr = own(given, t.name);
    if (!arr) throw new Error(`${who}: missing table '${t.name}' (${t.elem}[${t.axis}])`);
    if (t.elem === 'i32' && !(arr instanceof Int32Array)) throw new Error(`${who}: table '${t.name}' is i32 but was given a ${arr.constructor.name}`);
    if (arr.length === 0) throw new Error(`${who}: table '${t.name}' is empty`);
    if (sizes) {
      const want = sizes[AXIS_SIZE[t.axis]];
      if (arr.length !== want) throw new Error(`${who}: table '${t.name}' has length ${arr.length} but its axis ${t.axis} has size ${want}`);
    }
    return arr;
  });
}

