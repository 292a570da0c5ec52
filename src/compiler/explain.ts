// `explain`: what the compiler learned about one attention block, for people
// (text) and tools (JSON): the IR with each value's dependency class, the
// affine form of the logit, the tile test, and how a sample tiling is
// classified by it (`#` every pair kept, `.` tile skipped, `~` partial: the
// mask is evaluated per pair). The tile classes come from running the tile
// test program (passes/mask-intervals.ts) through ir/eval.ts, exactly what
// kernels do at run time. A mask that reads tables is classified from
// sample tables: `sample.tables` when given, else the seeded defaults of
// `attnc check` (runtime/random.ts defaultTables, seed 0: sorted document ids
// for i32 tables over positions).
import { defaultTables } from '../runtime/random.ts';
import { evalNodes } from './ir/eval.ts';
import type { Node } from './ir/nodes.ts';
import { topoOrder } from './ir/nodes.ts';
import { exprString, printNodes } from './ir/print.ts';
import type { Analysis, AttentionProgram } from './ir/program.ts';
import { classifyTile, type TileClass } from './passes/mask-intervals.ts';
import { own } from './own.ts';
import { inLog2Units } from './render/exp2-feed.ts';

export interface ExplainOptions {
  tile?: { bm: number; bn: number };
  sample?: {
    q_len: number; kv_len: number; params?: Record<string, number>; head_dim?: number;
    /** Table contents for the sample (default: defaultTables of runtime/random.ts, seed 0, B = Hq = 1). */
    tables?: Record<string, ArrayLike<number>>;
  };
}

export interface TileMap {
  bm: number; bn: number; q_len: number; kv_len: number;
  params: Record<string, number>;
  /** One string per query tile row, one char per key tile: `#` all, `.` none, `~` partial. */
  grid: string[];
  counts: Record<TileClass, number>;
}

export interface ExplainData {
  name: string;
  ir: Array<{ id: number; op: string; type: string; args: number[]; value?: number | boolean | string; name?: string; class?: string }>;
  logit: number;
  mask: number;
  affine: { a: string; c: string } | null;
  /** Not affine: what the kernels evaluate per element (log2 units, invariant factors hoisted; then capped at 1e38). */
  kernelLogit2: string | null;
  tileTest: { canBeTrue: string; canBeFalse: string };
  tiles: TileMap;
}

const CHAR: Record<TileClass, string> = { all: '#', none: '.', partial: '~' };

export function tileMap(program: AttentionProgram, analysis: Analysis, opts: ExplainOptions = {}): TileMap {
  const { bm, bn } = opts.tile ?? { bm: 64, bn: 64 };
  const q_len = opts.sample?.q_len ?? 512, kv_len = opts.sample?.kv_len ?? 512;
  const params = Object.fromEntries(program.params.map((p) => [p.name, (opts.sample?.params && own(opts.sample.params, p.name)) ?? p.default]));
  const offset = kv_len - q_len; // q_idx = row + (kv_len - q_len)
  const base = { head: 0, batch: 0, q_len, kv_len, head_dim: opts.sample?.head_dim ?? 64 };
  const tables = opts.sample?.tables ?? defaultTables(program.inputs, { B: 1, Hq: 1, Nq: q_len, Nk: kv_len }, 0);
  const counts: Record<TileClass, number> = { all: 0, none: 0, partial: 0 };
  const grid: string[] = [];
  for (let r0 = 0; r0 < q_len; r0 += bm) {
    let line = '';
    for (let k0 = 0; k0 < kv_len; k0 += bn) {
      const builtins = {
        ...base, q_lo: r0 + offset, q_hi: Math.min(q_len, r0 + bm) - 1 + offset, kv_lo: k0, kv_hi: Math.min(kv_len, k0 + bn) - 1,
      };
      const c = classifyTile(analysis.tile, { builtins, params, tables });
      counts[c]++;
      line += CHAR[c];
    }
    grid.push(line);
  }
  return { bm, bn, q_len, kv_len, params, grid, counts };
}

export function explainJson(program: AttentionProgram, analysis: Analysis, opts: ExplainOptions = {}): ExplainData {
  const roots: Node[] = [program.logit, program.mask];
  const valueOf = (n: Node) => (typeof n.value === 'number' && !Number.isFinite(n.value) ? String(n.value) : n.value);
  return {
    name: program.name,
    ir: topoOrder(roots).map((n) => ({
      id: n.id, op: n.op, type: n.type, args: n.args.map((a) => a.id),
      ...(n.value !== undefined ? { value: valueOf(n) } : {}),
      ...(n.name !== undefined ? { name: n.name } : {}),
      ...(analysis.classOf.has(n) ? { class: analysis.classOf.get(n) } : {}),
    })),
    logit: program.logit.id,
    mask: program.mask.id,
    affine: analysis.affine && { a: exprString(analysis.affine.a), c: exprString(analysis.affine.c) },
    kernelLogit2: analysis.affine ? null : kernelLogit2(program),
    tileTest: { canBeTrue: exprString(analysis.tile.canBeTrue), canBeFalse: exprString(analysis.tile.canBeFalse) },
    tiles: tileMap(program, analysis, opts),
  };
}

const MAX_GRID = 64;

export function explain(program: AttentionProgram, analysis: Analysis, opts: ExplainOptions = {}): string {
  const d = explainJson(program, analysis, opts);
  const t = d.tiles;
  const total = t.counts.all + t.counts.none + t.counts.partial;
  const lines = [
    `attention ${d.name}`,
    '',
    'IR (value = op type args ; dependency class):',
    ...printNodes([program.logit, program.mask], analysis.classOf).map((l) => '  ' + l),
    `  logit = %${d.logit}   (${analysis.classOf.get(program.logit) ?? '?'})`,
    `  mask  = %${d.mask}   (${analysis.classOf.get(program.mask) ?? '?'})`,
    '',
    d.affine
      ? `affine logit: logit = a * dot + c\n  a = ${d.affine.a}   (${analysis.classOf.get(analysis.affine!.a) ?? '?'})\n  c = ${d.affine.c}   (${analysis.classOf.get(analysis.affine!.c) ?? '?'})`
      : `not affine: the logit is evaluated per element; the kernels compute, in log2 units (capped at 1e38,\ninvariant factors and divisions hoisted out of the element loop):\n  ${d.kernelLogit2}`,
    '',
    'tile test (per tile, over q_lo..q_hi x kv_lo..kv_hi):',
    `  can be true:  ${d.tileTest.canBeTrue}`,
    `  can be false: ${d.tileTest.canBeFalse}`,
    '',
    `sample tiling: q_len = ${t.q_len}, kv_len = ${t.kv_len}, ${t.bm}x${t.bn} tiles` +
      (Object.keys(t.params).length ? `, ${Object.entries(t.params).map(([k, v]) => `${k} = ${v}`).join(', ')}` : '') +
      (program.inputs.length ? (opts.sample?.tables ? ', given tables' : ', sample tables (seed 0)') : ''),
    ...(t.grid.length <= MAX_GRID && t.grid[0].length <= MAX_GRID
      ? t.grid.map((g) => '  ' + g)
      : [`  (grid of ${t.grid.length}x${t.grid[0].length} tiles not drawn)`]),
    `  # all kept: ${t.counts.all}   . skipped: ${t.counts.none}   ~ partial: ${t.counts.partial}   (of ${total})`,
    '',
  ];
  return lines.join('\n');
}

/** Evaluated tile test of one tile (exposed for tests and debugging). */
export function tileTestValues(analysis: Analysis, builtins: Record<string, number>, params: Record<string, number>,
  tables?: Record<string, ArrayLike<number>>): [boolean, boolean] {
  const v = evalNodes([analysis.tile.canBeTrue, analysis.tile.canBeFalse], { builtins, params, tables });
  return [v.get(analysis.tile.canBeTrue) as boolean, v.get(analysis.tile.canBeFalse) as boolean];
}

/** What the kernels evaluate per element when the logit is not affine, before the cap (render/exp2-feed.ts). */
function kernelLogit2(program: AttentionProgram): string {
  return exprString(inLog2Units(program.logit, program.factory));
}
