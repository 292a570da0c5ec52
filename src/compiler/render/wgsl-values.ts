// Renders the spec's values into the scopes chosen by wgsl-plan.ts: which
// leaf names each scope sees, and how a later scope refers to a value an
// earlier scope computed (a `let`, or an element of a workgroup table).
import type { Node } from '../ir/nodes.ts';
import type { AttentionProgram } from '../ir/program.ts';
import { emitValues, type LeafNames } from './cstyle.ts';
import { WGSL } from './lang-wgsl.ts';
import { axisLengthExpr } from './wgsl-abi.ts';
import type { HoistPlan } from './wgsl-plan.ts';
import { mangle } from './names.ts';

export type EmitScope = 'head' | 'row' | 'col' | 'diag' | 'elem' | 'tile';

/** Leaf names per scope: col and diag rebind the positions to the key / diagonal being tabulated. */
export function leafNames(program: AttentionProgram, scope: EmitScope, headDim: number): LeafNames {
  const axisOf = new Map(program.inputs.map((t) => [t.name, t.axis]));
  return {
    leaf(n: Node): string {
      if (n.op === 'dot') return 'qk';
      if (n.op === 'param') return `u.${mangle('p', n.name!)}`;
      switch (n.name) {
        case 'q_idx': return scope === 'diag' ? 'dq' : 'q_idx';
        case 'kv_idx': return scope === 'diag' ? 'dk' : scope === 'col' ? 'ck' : 'kv_idx';
        case 'head': return 'head';
        case 'batch': return 'batch';
        case 'q_len': return 'u.Nq';
        case 'kv_len': return 'u.Nk';
        case 'head_dim': return `${headDim}i`;
        case 'q_lo': case 'q_hi': case 'kv_lo': case 'kv_hi': return n.name;
        default: throw new Error(`internal error: WGSL leaf ${n.op} ${n.name ?? ''}`);
      }
    },
    load(n: Node, index: string): string {
      const axis = axisOf.get(n.name!);
      if (!axis) throw new Error(`internal error: table ${n.name} is not an input`);
      return `${mangle('t', n.name!)}[u32(clamp(${index}, 0i, ${axisLengthExpr(axis)} - 1i))]`;
    },
    loadRange(n: Node, lo: string, hi: string): string {
      if (!axisOf.has(n.name!)) throw new Error(`internal error: table ${n.name} is not an input`);
      return `${tableRangeFn(n.op === 'load_min' ? 'min' : 'max', mangle('t', n.name!))}(${lo}, ${hi})`;
    },
  };
}

/** Name of the per-table range helper (WGSL cannot pass a storage pointer to a function). */
export function tableRangeFn(kind: 'min' | 'max', variable: string): string {
  return `attnc_t${kind}_${variable}`;
}

/**
 * The range helpers (`load_min` / `load_max`) that `code` calls: min / max of
 * the table over the clamped indices clamp(lo)..clamp(max(lo, hi)).
 */
export function tableRangeHelpers(code: string, tables: ReadonlyArray<{ variable: string; elem: 'i32' | 'f32'; length: string }>): string[] {
  const out: string[] = [];
  for (const t of tables) {
    for (const kind of ['min', 'max'] as const) {
      const fn = tableRangeFn(kind, t.variable);
      if (!new RegExp(`\\b${fn}\\(`).test(code)) continue;
      out.push([
        `fn ${fn}(lo: i32, hi: i32) -> ${t.elem} {`,
        `  // ${kind} of ${t.variable}[clamp(i, 0, len - 1)] over i in lo..hi (hi < lo: the element at lo); tile tests only.`,
        `  let n = ${t.length};`,
        `  let a = clamp(lo, 0i, n - 1i);`,
        `  let b = clamp(max(lo, hi), 0i, n - 1i);`,
        `  var v = ${t.variable}[u32(a)];`,
        `  for (var i = a + 1i; i <= b; i++) { v = ${kind}(v, ${t.variable}[u32(i)]); }`,
        `  return v;`,
        `}`,
      ].join('\n'));
    }
  }
  return out;
}

const SIMPLE = /^(\(?-?[\w.]+\)?|u\.\w+)$/;

/**
 * Emits `roots` in one scope. Non-trivial values that a later scope reads are
 * always bound to a `let` (an inlined expression would be recomputed there).
 */
export function emitScope(roots: readonly Node[], program: AttentionProgram, scope: EmitScope, headDim: number,
  known: ReadonlyMap<Node, string>, prefix: string, indent: string): { lines: string[]; values: Map<Node, string> } {
  const names = leafNames(program, scope, headDim);
  const out = emitValues(roots, WGSL, names, { known, prefix, indent });
  const values = new Map<Node, string>();
  roots.forEach((r, i) => {
    let text = out.values[i];
    if (!SIMPLE.test(text) && !known.has(r)) {
      const name = `${prefix}${r.id}`;
      out.lines.push(indent + WGSL.declare(name, r.type, text));
      text = name;
    }
    values.set(r, text);
  });
  return { lines: dropDeadLets(out.lines, [...values.values()]), values };
}

/**
 * emitValues also walks below values the scope already knows, which can
 * declare temporaries nothing reads (e.g. a diagonal table's inputs); drop
 * them so the generated code shows only what runs.
 */
function dropDeadLets(lines: string[], used: string[]): string[] {
  const kept: string[] = [];
  const reads = used.join(' ');
  let later = reads;
  for (let i = lines.length - 1; i >= 0; i--) {
    const name = /^\s*let (\w+) =/.exec(lines[i])?.[1];
    if (name && !new RegExp(`\\b${name}\\b`).test(later)) continue;
    kept.unshift(lines[i]);
    later += ' ' + lines[i];
  }
  return kept;
}

/** A workgroup table of per-key or per-diagonal values (bool stored as u32). */
export interface WgTable { node: Node; variable: string; storeType: 'f32' | 'i32' | 'u32' }

export function tablesFor(plan: HoistPlan, scope: 'col' | 'diag'): WgTable[] {
  return plan.frontier[scope].map((node) => ({
    node,
    variable: `wg_${scope}${node.id}`,
    storeType: node.type === 'bool' ? 'u32' : node.type,
  }));
}

/** How the element loop reads a table entry. */
export function readTable(t: WgTable, index: string): string {
  const at = `${t.variable}[${index}]`;
  return t.storeType === 'u32' ? `(${at} != 0u)` : at;
}

/** How a tabulating loop stores a value. */
export function writeTable(t: WgTable, index: string, value: string): string {
  return `${t.variable}[${index}] = ${t.storeType === 'u32' ? `select(0u, 1u, ${value})` : value};`;
}

