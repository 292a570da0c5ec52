// The shared C-style expression renderer. It walks IR expressions once; each
// target supplies a `CLanguage` table (type names, literals, operator
// templates, helper functions) and overrides nothing else. The kernel
// skeletons (wgsl.ts, cuda.ts) decide WHERE values are computed (hoisting by
// dependency class); this file decides HOW an expression is written.
import { assertNever, type ValueType } from '../syntax/ast.ts';
import { topoOrder, type BinaryOpName, type Node, type UnaryOpName } from '../ir/nodes.ts';

export interface CLanguage {
  readonly name: 'wgsl' | 'cuda' | 'python';
  /** Type names as the target spells them. */
  readonly type: Readonly<Record<ValueType, string>>;
  literal(value: number | boolean, type: ValueType): string;
  /** A statement binding an immutable local. */
  declare(name: string, type: ValueType, expr: string): string;
  unary(op: Exclude<UnaryOpName, 'cast'>, a: string, type: ValueType): string;
  cast(a: string, from: ValueType, to: ValueType): string;
  binary(op: BinaryOpName, a: string, b: string, argType: ValueType): string;
  select(cond: string, a: string, b: string): string;
  /** Helper functions (by name) that the operator templates may call, in the target's syntax. */
  readonly helpers: Readonly<Record<string, string>>;
}

/** How the kernel skeleton names the leaves (`dot`, built-ins, params) and reads tables. */
export interface LeafNames {
  leaf(node: Node): string;
  load(node: Node, index: string): string;
  /** `load_min` / `load_max` of `node.name` over the index range lo..hi (tile tests only). */
  loadRange(node: Node, lo: string, hi: string): string;
}

export interface EmitOptions {
  /** Values the skeleton already computed (hoisted), by node. */
  known?: ReadonlyMap<Node, string>;
  /** Prefix of the temporaries declared here, e.g. `r` for per-row values. */
  prefix: string;
  indent?: string;
  /**
   * Write boolean `and`/`or` as `&`/`|`, evaluating both sides. Only for code whose every operand
   * is total (no faults: table reads are clamped, integer division is defined for any divisor) and
   * cheap, such as a kernel's per-element mask: a short-circuit there becomes a branch per element
   * around a shared-memory load, where straight-line compares and one select cost less.
   */
  eagerLogic?: boolean;
}

export interface Emitted {
  /** Declarations to place before the uses. */
  lines: string[];
  /** An expression for each root, in order. */
  values: string[];
}

/** Shortest decimal that reads back as the same f32. */
export function f32Digits(v: number): string {
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return normalizeNumber(s);
  }
  return normalizeNumber(f.toPrecision(9));
}

function normalizeNumber(s: string): string {
  // toPrecision may give "1e+2" or "100": keep a form both C and WGSL read as a float.
  let out = s.replace('e+', 'e');
  if (!/[.e]/.test(out)) out += '.0';
  else if (/^-?\d+e/.test(out)) out = out.replace('e', '.0e');
  return out;
}

const isLeaf = (n: Node) => n.op === 'const' || n.op === 'dot' || n.op === 'builtin' || n.op === 'param';

/**
 * Renders `roots`, declaring a temporary for every value used more than once
 * (so nothing is computed twice) and inlining single-use values.
 */
export function emitValues(roots: readonly Node[], lang: CLanguage, names: LeafNames, opts: EmitOptions): Emitted {
  const known = opts.known ?? new Map<Node, string>();
  const indent = opts.indent ?? '';
  const order = topoOrder(roots).filter((n) => !known.has(n));
  const uses = new Map<Node, number>();
  for (const n of order) for (const a of n.args) uses.set(a, (uses.get(a) ?? 0) + 1);
  for (const r of roots) uses.set(r, (uses.get(r) ?? 0) + 1);

  const text = new Map<Node, string>(known);
  const lines: string[] = [];
  for (const n of order) {
    const expr = opts.eagerLogic && (n.op === 'and' || n.op === 'or')
      ? `(${text.get(n.args[0])!} ${n.op === 'and' ? '&' : '|'} ${text.get(n.args[1])!})`
      : renderNode(n, (a) => text.get(a)!, lang, names);
    const shared = (uses.get(n) ?? 0) > 1 && !isLeaf(n);
    if (shared || (expr.length > 90 && !isLeaf(n))) {
      const name = `${opts.prefix}${n.id}`;
      lines.push(indent + lang.declare(name, n.type, expr));
      text.set(n, name);
    } else {
      text.set(n, expr);
    }
  }
  return { lines, values: roots.map((r) => text.get(r)!) };
}

function renderNode(n: Node, arg: (a: Node) => string, lang: CLanguage, names: LeafNames): string {
  switch (n.op) {
    case 'const':
      return lang.literal(n.value!, n.type);
    case 'dot': case 'builtin': case 'param':
      return names.leaf(n);
    case 'load':
      return names.load(n, arg(n.args[0]));
    case 'load_min': case 'load_max':
      return names.loadRange(n, arg(n.args[0]), arg(n.args[1]));
    case 'select':
      return lang.select(arg(n.args[0]), arg(n.args[1]), arg(n.args[2]));
    case 'cast':
      return lang.cast(arg(n.args[0]), n.args[0].type, n.type);
    case 'neg': case 'not': case 'exp': case 'exp2': case 'log': case 'log2': case 'log1p': case 'sqrt':
    case 'rsqrt': case 'tanh': case 'sigmoid': case 'abs': case 'sign': case 'floor': case 'ceil':
      return lang.unary(n.op, arg(n.args[0]), n.type);
    case 'add': case 'sub': case 'mul': case 'div': case 'mod': case 'idiv': case 'min': case 'max': case 'pow':
    case 'lt': case 'le': case 'gt': case 'ge': case 'eq': case 'ne': case 'and': case 'or':
      return lang.binary(n.op, arg(n.args[0]), arg(n.args[1]), n.args[0].type);
    default:
      return assertNever(n.op, 'IR op');
  }
}

/** Helper functions referenced (by name) in a piece of generated code, in a stable order. */
export function helpersUsed(lang: CLanguage, code: string): string[] {
  // Helpers may call helpers: grow the set until nothing new is referenced.
  const used = new Set<string>();
  let text = code;
  for (;;) {
    const found = Object.keys(lang.helpers).filter((name) => !used.has(name) && new RegExp(`\\b${name}\\(`).test(text));
    if (found.length === 0) break;
    found.forEach((name) => used.add(name));
    text = found.map((name) => lang.helpers[name]).join('\n');
  }
  // Callees before callers (definition order matters in C).
  return Object.keys(lang.helpers).filter((name) => used.has(name)).map((name) => lang.helpers[name]);
}

export const INFIX: Partial<Record<BinaryOpName, string>> = {
  add: '+', sub: '-', mul: '*', div: '/', lt: '<', le: '<=', gt: '>', ge: '>=', eq: '==', ne: '!=', and: '&&', or: '||',
};
