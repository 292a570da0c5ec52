// The spec-dependent pieces of a CUDA kernel: head/row values, the shared
// tables of per-column and per-diagonal values, the per-element logit and
// mask, and the per-tile interval tests. The kernel skeletons (cuda-mma.ts,
// cuda-simt.ts) paste them in; they define the variables named here:
//   block scope: hq, bb, B, Hq, Hkv, Nq, Nk, HEAD_DIM, params, tables, tid
//   table fill:  kv0 (first key of the tile), q0 (q_idx of the block's first row), buf
//   element:     i (row slot), lr/lc (row/col in the tile), qi, kvi, stage, dotv
//   tile tests:  q_lo, q_hi, kv_lo, kv_hi
import type { LoweredKernel } from '../ir/program.ts';
import { IrFactory, readsTable, topoOrder, type Node } from '../ir/nodes.ts';
import { emitValues as emitAll, type EmitOptions, type Emitted, type LeafNames, type CLanguage } from './cstyle.ts';
import { CUDA } from './lang-cuda.ts';
import { keyTileLoads, queryTileLoads } from '../passes/mask-intervals.ts';
import { exp2Feed } from './exp2-feed.ts';
import { mangle } from './names.ts';
import { classifier, ctypeOf, planHoists, type Hoist } from './cuda-hoist.ts';
import { AXIS_SIZE } from '../syntax/ast.ts';


const BUILTIN: Record<string, string> = {
  q_idx: 'qi', kv_idx: 'kvi', head: 'hq', batch: 'bb', q_len: 'Nq', kv_len: 'Nk', head_dim: 'HEAD_DIM',
  q_lo: 'q_lo', q_hi: 'q_hi', kv_lo: 'kv_lo', kv_hi: 'kv_hi',
};

export function leafNames(k: LoweredKernel, over: Record<string, string> = {}, perThread = false): LeafNames {
  const axis = new Map(k.program.inputs.map((t) => [t.name, t.axis]));
  // Range reads: warp-cooperative (attnc_tmin: every lane the same range) or,
  // in the per-thread tile test, by one thread (attnc_tmin1: lanes differ).
  const suffix = perThread ? '1' : '';
  return {
    leaf(n: Node): string {
      if (n.op === 'dot') return 'dotv';
      if (n.op === 'param') return mangle('p', n.name!);
      if (n.op === 'builtin') return over[n.name!] ?? BUILTIN[n.name!];
      throw new Error(`internal: not a leaf: ${n.op}`);
    },
    load: (n, index) => `${mangle('t', n.name!)}[attnc_clampi(${index}, ${AXIS_SIZE[axis.get(n.name!)!]})]`,
    loadRange: (n, lo, hi) =>
      `${n.op === 'load_min' ? 'attnc_tmin' : 'attnc_tmax'}${suffix}(${mangle('t', n.name!)}, ${lo}, ${hi}, ${AXIS_SIZE[axis.get(n.name!)!]})`,
  };
}

/**
 * emitValues, but nodes in `known` become opaque leaves first, so nothing
 * that only feeds a hoisted value is re-emitted (the shared renderer walks
 * below known nodes and would declare their unused subexpressions).
 */
function emitValues(roots: readonly Node[], lang: CLanguage, names: LeafNames, opts: EmitOptions): Emitted {
  const known = opts.known ?? new Map<Node, string>();
  if (!known.size) return emitAll(roots, lang, names, opts);
  const f = new IrFactory();
  const copy = new Map<Node, Node>();
  const text = new Map<Node, string>();
  for (const n of topoOrder(roots)) {
    if (copy.has(n)) continue;
    const k = known.get(n);
    if (k !== undefined) {
      const leaf = f.make('param', n.type, [], { name: `\u0001${k}` });
      text.set(leaf, k);
      copy.set(n, leaf);
    } else if (!n.args.some((a) => !copy.has(a))) {
      copy.set(n, f.make(n.op, n.type, n.args.map((a) => copy.get(a)!), { value: n.value, name: n.name }));
    }
  }
  const inner: LeafNames = {
    leaf: (n) => text.get(n) ?? names.leaf(n),
    load: (n, index) => names.load(n, index),
    loadRange: (n, lo, hi) => names.loadRange(n, lo, hi),
  };
  return emitAll(roots.map((r) => copy.get(r)!), lang, inner, { ...opts, known: undefined });
}

export interface Piece { lines: string[]; value: string }

/** How a kernel other than the forward one evaluates elements (the backward kernels, render/cuda-bwd.ts). */
export interface ElemOptions {
  /**
   * Rows are keys and columns queries (the dK/dV kernel): per-key values come from the column tables at row `lr`,
   * per-diagonal ones at `lc - lr + bn - 1` (tables filled with q0 = the query tile's first q_idx, kv0 = the first
   * key, bm = the query tile), per-query values are computed per element.
   */
  transposed?: boolean;
  /** More values to evaluate with the element's (their shared terms and hoisted values once): the backward's d logit / d dot. */
  extra?: Node[];
}

export interface SpecCode {
  affine: boolean;
  maskFree: boolean;
  /** Kernel parameters after the sizes: `float p_tau, const int* __restrict__ t_doc`. */
  paramDecls: string[];
  headLines: string[];
  /** The values headLines declares (hv_<id>) and their C types. */
  headValues: Array<{ name: string; ctype: string }>;
  /** Register arrays for per-row values, sized by the skeleton's row slots. */
  rowDecls(rows: number): string[];
  /** Body computing row slot `i` (declares `qi` from `qiExpr`). */
  rowFill(qiExpr: string): string[];
  /** Shared tables, one buffer per pipeline stage (default 2). */
  tableDecls(bm: number, bn: number, stages?: number): string[];
  /** Bytes of static shared memory that tableDecls(bm, bn, stages) declares. */
  tableBytes(bm: number, bn: number, stages: number): number;
  /**
   * Fills buffer `buf` for tile `j` (keys from `kv0`); the caller synchronizes. With `carry` (CudaTiles.diagCarry,
   * threads >= bn) per-diagonal values stay in registers that `decls` declares, in the scope of one work item
   * around the fill (its calls must come in tile order), and a tile right after the last one filled reuses them.
   */
  tableFill(bm: number, bn: number, threads: number, carry?: boolean): { decls: string[]; body: string[] };
  hasTables: boolean;
  /** How many per-element values depend on q_idx - kv_idx only and are read from per-diagonal tables (a_t and m_t: 2). */
  diagValues: number;
  /**
   * The logit is a * dot + c (log2 units) with a and c the same for the whole block and a > 0
   * (exp2-feed.ts, aPositive): their expressions, which read head values only. A kernel may then
   * keep raw dot products in S, take each row's max over them, and fold a and c into the exp2's
   * FMA (one instruction per element fewer). Null for any other logit.
   */
  foldedScale: { a: string; c: string } | null;
  /**
   * Per-element code; `logit2` is the log2-domain logit (with `raw`, where foldedScale is set: the
   * dot product itself); `keep` the mask (masked variant only).
   */
  elem(masked: boolean, bn: number, raw?: boolean, diagRegs?: boolean, opts?: ElemOptions): { lines: string[]; logit2: string; keep: string; a2: string | null; extra: string[] };
  /**
   * Reads this thread's per-diagonal values of the tile in `stage` into registers (dp_*), for an element loop of
   * wgmma fragments (16 rows a warp, `nt` n8 tiles) that then takes them from there (elem's diagRegs): element
   * (n, r) is diagonal dbase - 8 * (n - (r >> 1)) - (r & 1), so a thread needs nt + 1 times 2 of them. A kernel
   * issues these loads before it waits for the tile's S (CudaTiles.diagPrefetch). Empty without diagonal tables.
   */
  diagPrefetch(nt: number, bn: number, stage: string): string[];
  /** Table range reads of the tile tests that depend on the query tile only: once per block, before the lambdas. */
  tileQueryLines: string[];
  tileLive: Piece;
  tilePartialMask: Piece;
  /**
   * When the live test reads tables over the key range (beyond the per-query-tile
   * scans above): the body of `tile_live(j, part)` for ONE thread (per-thread
   * range scans, no warp collectives), which returns whether tile j is live and,
   * for a live tile, sets `part` (initially true) to whether it is partial.
   * Null for tests that read no such table (causal, windows): those stay as they were.
   */
  tilePerThread: string[] | null;
  /**
   * The dK/dV kernel's per-thread item test (render/cuda-bwd.ts: a block owns keys kv_lo..kv_hi and walks items,
   * each a query head and query tile q_lo..q_hi), for tests that read tables beyond the key range: `keyLines` scan
   * the block's key range once (every thread the same range), `perThread` is the body of `tile_live(it, part)` for
   * one thread, as tilePerThread with the roles swapped (a ragged item is partial). Null where the test reads no
   * such table.
   */
  itemPerThread: { keyLines: string[]; perThread: string[] } | null;
  /** Whether an item's live test reads no table at all: then 32 lanes may test 32 items at once (no collectives in it). */
  itemTestPlain: boolean;
  helpers: string[];
}

/**
 * A partial tile's element: the logit first, then the select. With the logit inside the select's arm,
 * its table reads (a per-diagonal scale) would sit behind a branch per element.
 */
export function maskedLogit(target: string, e: { logit2: string; keep: string }): string {
  return `{ const float lg2 = ${e.logit2}; ${target} = ${e.keep} ? lg2 : ATTNC_NEG_INF; }`;
}

export function buildSpecCode(k: LoweredKernel): SpecCode {
  const { program: p, analysis: an } = k;
  const f = p.factory;
  const classOf = classifier(an.classOf);
  const maskFree = p.mask.op === 'const' && p.mask.value === true;
  // Fold log2(e) into what feeds exp2: for affine logits into a and c, so the
  // element costs one FMA; otherwise one multiply after the user's transform.
  const affine = an.affine !== null;
  const feed = exp2Feed(k);
  const valueRoots = feed.affine ? [feed.a2, feed.c2] : [feed.logit2];
  const plan = planHoists(maskFree ? valueRoots : [...valueRoots, p.mask], classOf);
  const names = leafNames(k);

  // Head values, once per block.
  // One emission for all of them: separate ones would each number their temporaries from scratch.
  const headKnown = new Map<Node, string>();
  const headLines: string[] = [];
  if (plan.head.length) {
    const e = emitValues(plan.head.map((h) => h.node), CUDA, names, { prefix: 'v_h', indent: '  ' });
    headLines.push(...e.lines, ...plan.head.map((h, j) => `  const ${h.ctype} hv_${h.node.id} = ${e.values[j]};`));
    // (void): the warp-specialized kernel pastes these into both roles, and each uses only some.
    headLines.push(`  ${plan.head.map((h) => `(void)hv_${h.node.id};`).join(' ')}`);
    for (const h of plan.head) headKnown.set(h.node, `hv_${h.node.id}`);
  }

  const rowDecls = (rows: number) => plan.row.map((h) => `  ${h.ctype} rw_${h.node.id}[${rows}];`);
  const rowFill = (qiExpr: string) => {
    if (!plan.row.length) return [];
    const e = emitValues(plan.row.map((h) => h.node), CUDA, names, { known: headKnown, prefix: 'v_r', indent: '    ' });
    return [`    const int qi = ${qiExpr};`, ...e.lines, ...plan.row.map((h, j) => `    rw_${h.node.id}[i] = ${e.values[j]};`)];
  };

  const tableName = (h: Hoist) => `st_${h.cls === 'col' ? 'c' : 'd'}${h.node.id}`;
  // Two or four f32 diagonal values (an affine logit's a and c) share one table, interleaved
  // and aligned, so an element reads them with one vector load instead of one load each.
  const diagPacked = (plan.diag.length === 2 || plan.diag.length === 4) && plan.diag.every((h) => h.ctype === 'float');
  const diagSlot = (h: Hoist, index: string, buf: string) =>
    diagPacked ? `st_dv[${buf}][${index}][${plan.diag.indexOf(h)}]` : `${tableName(h)}[${buf}][${index}]`;
  const tableDecls = (bm: number, bn: number, stages = 2) => [
    ...plan.col.map((h) => `  __shared__ ${h.ctype} ${tableName(h)}[${stages}][${bn}];`),
    ...(diagPacked
      ? [`  __shared__ __align__(${4 * plan.diag.length}) float st_dv[${stages}][${bm + bn - 1}][${plan.diag.length}];`]
      : plan.diag.map((h) => `  __shared__ ${h.ctype} ${tableName(h)}[${stages}][${bm + bn - 1}];`)),
  ];
  const bytesOf = (h: Hoist) => (h.ctype === 'bool' ? 1 : 4);
  const tableBytes = (bm: number, bn: number, stages: number) => stages * (
    plan.col.reduce((n, h) => n + bytesOf(h) * bn, 0) + plan.diag.reduce((n, h) => n + bytesOf(h) * (bm + bn - 1), 0));
  const tableFill = (bm: number, bn: number, threads: number, carry = false) => {
    const decls: string[] = [], body: string[] = [];
    if (plan.col.length) {
      const e = emitValues(plan.col.map((h) => h.node), CUDA, names, { known: headKnown, prefix: 'v_c', indent: '      ' });
      body.push(`    for (int x = tid; x < ${bn}; x += ${threads}) {`, `      const int kvi = kv0 + x;`, ...e.lines,
        ...plan.col.map((h, j) => `      ${tableName(h)}[buf][x] = ${e.values[j]};`), '    }');
    }
    if (plan.diag.length) {
      // Values that depend on q_idx - kv_idx only: evaluate diagonal x of the
      // tile at a representative pair (q0 + x, kv0 + BN - 1).
      const dn = leafNames(k, { q_idx: 'dq', kv_idx: 'dk' });
      const diagonals = bm + bn - 1;
      if (carry && threads < bn) throw new Error(`internal: carrying per-diagonal values needs a thread per diagonal of BN ${bn} (${threads} threads)`);
      const e = emitValues(plan.diag.map((h) => h.node), CUDA, dn, { known: headKnown, prefix: 'v_d', indent: carry ? '          ' : '      ' });
      if (!carry) {
        body.push(`    for (int x = tid; x < ${diagonals}; x += ${threads}) {`, `      const int dq = q0 + x, dk = kv0 + ${bn - 1};`, ...e.lines,
          ...plan.diag.map((h, j) => `      ${diagSlot(h, 'x', 'buf')} = ${e.values[j]};`), '    }');
      } else {
        // Diagonal x of tile j is diagonal x + BN of tile j + 1: thread tid < BN keeps the values of x = tid + s * BN
        // in dc_*[s], and a tile right after the last one filled shifts them by one slot and computes slot 0 alone.
        const slots = Math.ceil(diagonals / bn);
        const reg = (h: Hoist) => `dc_${h.node.id}`;
        decls.push(`  // Per-diagonal values in registers from tile to tile (CudaTiles.diagCarry); dc_tile: the tile they are of.`,
          `  ${plan.diag.map((h) => `${h.ctype} ${reg(h)}[${slots}] = {};`).join(' ')}`, '  int dc_tile = -2;');
        body.push(`    if (tid < ${bn}) {`, '      const bool shift = j == dc_tile + 1;', '      #pragma unroll',
          `      for (int s = ${slots - 1}; s >= 0; --s) {`, `        const int x = tid + s * ${bn};`,
          `        if (s > 0 && shift) {`, `          ${plan.diag.map((h) => `${reg(h)}[s] = ${reg(h)}[s - 1];`).join(' ')}`,
          `        } else if (x < ${diagonals}) {`, `          const int dq = q0 + x, dk = kv0 + ${bn - 1};`, ...e.lines,
          ...plan.diag.map((h, j) => `          ${reg(h)}[s] = ${e.values[j]};`), '        }',
          `        if (x < ${diagonals}) { ${plan.diag.map((h) => `${diagSlot(h, 'x', 'buf')} = ${reg(h)}[s];`).join(' ')} }`,
          '      }', '      dc_tile = j;', '    }');
      }
    }
    return { decls, body };
  };

  // a and c of the exp2's FMA, when both are block-uniform and a is provably positive.
  let foldedScale: SpecCode['foldedScale'] = null;
  if (feed.affine && feed.aPositive && [feed.a2, feed.c2].every((n) => ['const', 'head'].includes(classOf(n)))) {
    const e = emitValues([feed.a2, feed.c2], CUDA, names, { known: headKnown, prefix: 'v_f', indent: '' });
    if (!e.lines.length) foldedScale = { a: e.values[0], c: e.values[1] };
  }

  const diagReg = (h: Hoist) => `dp_${h.node.id}`;
  const diagPrefetch = (nt: number, bn: number, stage: string) => !plan.diag.length ? [] : [
    `// This thread's per-diagonal values of the tile (CudaTiles.diagPrefetch): [n - (r >> 1) + 1][r & 1] is element (n, r)'s.`,
    `const int dbase = warp * 16 + g - 2 * t4 + ${bn - 1};`,
    `${plan.diag.map((h) => `${h.ctype} ${diagReg(h)}[${nt + 1}][2];`).join(' ')}`,
    '#pragma unroll',
    `for (int u = 0; u <= ${nt}; ++u) {`,
    '  #pragma unroll',
    '  for (int b = 0; b < 2; ++b) {',
    '    const int x = dbase - 8 * (u - 1) - b;',
    `    ${plan.diag.map((h) => `${diagReg(h)}[u][b] = ${diagSlot(h, 'x', stage)};`).join(' ')}`,
    '  }',
    '}',
  ];

  const elem = (masked: boolean, bn: number, raw = false, diagRegs = false, o: ElemOptions = {}) => {
    if (raw && !foldedScale) throw new Error('internal: raw dot products need a folded scale');
    const known = new Map(headKnown);
    if (!o.transposed) for (const h of plan.row) known.set(h.node, `rw_${h.node.id}[i]`);
    for (const h of plan.col) known.set(h.node, `${tableName(h)}[stage][${o.transposed ? 'lr' : 'lc'}]`);
    for (const h of plan.diag) {
      known.set(h.node, diagRegs ? `${diagReg(h)}[n - (r >> 1) + 1][r & 1]` : diagSlot(h, o.transposed ? `lc - lr + ${bn - 1}` : `lr - lc + ${bn - 1}`, 'stage'));
    }
    const extra = o.extra ?? [];
    const roots = [...valueRoots, ...extra, ...(masked && !maskFree ? [p.mask] : [])];
    // A partial tile's mask is evaluated eagerly: `&&` would put a branch around each element's
    // table read (ptxas keeps the read conditional), where compares and a select are cheaper.
    const e = emitValues(roots, CUDA, names, { known, prefix: masked ? 'v_m' : 'v_e', indent: '          ', eagerLogic: masked });
    const logit2 = raw ? 'dotv' : affine ? `fmaf(${e.values[0]}, dotv, ${e.values[1]})` : e.values[0];
    const keep = !masked ? 'true' : maskFree ? '(kvi < Nk)' : `((kvi < Nk) & ${e.values[roots.length - 1]})`;
    return { lines: e.lines, logit2, keep, a2: affine ? e.values[0] : null, extra: e.values.slice(valueRoots.length, valueRoots.length + extra.length) };
  };

  const tn = leafNames(k);
  // Table scans over q_lo..q_hi are the same for every KV tile: computed once.
  const { lines: tileQueryLines, known: tqKnown } = onceLoads(queryTileLoads(an.tile), tn, 'tq');
  const live = shortCircuit(an.tile.canBeTrue, 'and', tn, tqKnown, 'v_tl');
  const part = shortCircuit(an.tile.canBeFalse, 'or', tn, tqKnown, 'v_tp');
  const tilePerThread = readsTable([an.tile.canBeTrue], (x) => tqKnown.has(x))
    ? perThreadTest(an.tile.canBeTrue, an.tile.canBeFalse, k, tqKnown) : null;
  // The dK/dV kernel's: scans over the block's keys once, the query side per item and thread.
  const { lines: keyLines, known: tkKnown } = onceLoads(keyTileLoads(an.tile), tn, 'tk');
  const itemPerThread = readsTable([an.tile.canBeTrue], (x) => tkKnown.has(x))
    ? { keyLines, perThread: perThreadTest(an.tile.canBeTrue, an.tile.canBeFalse, k, tkKnown, '    if (qrow0 + QT > Nq || k0 + BK > Nk) return true;') }
    : null;

  const paramDecls = [
    ...p.params.map((q) => `${q.type === 'f32' ? 'float' : 'int'} ${mangle('p', q.name)}`),
    ...p.inputs.map((t) => `const ${ctypeOf(t.elem)}* __restrict__ ${mangle('t', t.name)}`),
  ];
  return {
    affine, maskFree, foldedScale, paramDecls, headLines, headValues: plan.head.map((h) => ({ name: `hv_${h.node.id}`, ctype: h.ctype })), rowDecls, rowFill, tableDecls, tableBytes, tableFill,
    hasTables: plan.col.length + plan.diag.length > 0,
    diagValues: plan.diag.length,
    elem,
    diagPrefetch,
    tileQueryLines,
    tileLive: live,
    tilePartialMask: part,
    tilePerThread,
    itemPerThread,
    itemTestPlain: tileQueryLines.length === 0 && !readsTable([an.tile.canBeTrue], () => false),
    helpers: [],
  };
}

/**
 * A tile test as early returns: the operands of its top-level && (or ||)
 * cheapest first, so that a causal bound decides before a table is scanned.
 */
function shortCircuit(root: Node, op: 'and' | 'or', names: LeafNames, known: ReadonlyMap<Node, string>, prefix: string): Piece {
  const operands = (n: Node): Node[] => (n.op === op ? n.args.flatMap(operands) : [n]);
  const scans = (n: Node) => readsTable([n], (x) => known.has(x));
  const parts = operands(root).sort((a, b) => Number(scans(a)) - Number(scans(b)));
  const lines: string[] = [];
  parts.forEach((part, i) => {
    const e = emitValues([part], CUDA, names, { known, prefix: `${prefix}${i}_`, indent: '    ' });
    lines.push(...e.lines);
    if (i < parts.length - 1) lines.push(op === 'and' ? `    if (!${e.values[0]}) return false;` : `    if (${e.values[0]}) return true;`);
    else lines.push(`    const bool ${prefix}_last = ${e.values[0]};`);
  });
  return { lines, value: `${prefix}_last` };
}

/** Table range reads computed once (every thread the same range) as `<tag>_<id>` values, and the map that names them. */
function onceLoads(loads: Node[], names: LeafNames, tag: string): { lines: string[]; known: Map<Node, string> } {
  const known = new Map<Node, string>();
  const lines: string[] = [];
  if (loads.length) {
    const e = emitValues(loads, CUDA, names, { prefix: `v_${tag}`, indent: '  ' });
    lines.push(...e.lines);
    loads.forEach((n, j) => {
      lines.push(`  const ${ctypeOf(n.type)} ${tag}_${n.id} = ${e.values[j]};`);
      known.set(n, `${tag}_${n.id}`);
    });
  }
  return { lines, known };
}

/**
 * The body of the per-thread `tile_live(j, part)` (see SpecCode.tilePerThread):
 * the live test's operands that read no table first (a causal bound returns
 * before any scan), then one min+max pass per (table, key range) that the
 * remaining operands read, then those operands; for a live tile the partial
 * test, from the same scans (a range only it reads is scanned inline).
 */
function perThreadTest(liveRoot: Node, partRoot: Node, k: LoweredKernel, tqKnown: ReadonlyMap<Node, string>, ragged = '    if (kv_lo + BN > Nk) return true;'): string[] {
  const names = leafNames(k, {}, true);
  const axis = new Map(k.program.inputs.map((t) => [t.name, t.axis]));
  const known = new Map(tqKnown);
  const lines: string[] = [];
  let serial = 0;
  const emit = (n: Node) => {
    const e = emitValues([n], CUDA, names, { known, prefix: `v_t1${serial++}_`, indent: '    ' });
    lines.push(...e.lines);
    return e.values[0];
  };
  const operands = (n: Node, op: 'and' | 'or'): Node[] => (n.op === op ? n.args.flatMap((a) => operands(a, op)) : [n]);
  const scans = (n: Node) => readsTable([n], (x) => known.has(x));

  const liveOps = operands(liveRoot, 'and');
  const cheap = liveOps.filter((n) => !scans(n)), tabled = liveOps.filter(scans);
  for (const n of cheap) lines.push(`    if (!${emit(n)}) return false;`);
  // Range reads of the table operands, in dependency order (a range whose
  // bounds read a table comes after that table's scan), min and max together.
  const ranges = topoOrder(tabled, (x) => known.has(x)).filter((n) => (n.op === 'load_min' || n.op === 'load_max') && !known.has(n));
  let scanned = 0;
  for (const n of ranges) {
    if (known.has(n)) continue;
    const [lo, hi] = n.args;
    const pair = ranges.filter((m) => m.name === n.name && m.args[0] === lo && m.args[1] === hi);
    const r = `tr${scanned++}`;
    const e = emitValues([lo, hi], CUDA, names, { known, prefix: `v_t1${serial++}_`, indent: '    ' });
    lines.push(...e.lines, `    int ${r}_min, ${r}_max;`,
      `    attnc_trange1(${mangle('t', n.name!)}, ${e.values[0]}, ${e.values[1]}, ${AXIS_SIZE[axis.get(n.name!)!]}, SCAN_BATCH, ${r}_min, ${r}_max);`);
    for (const m of pair) known.set(m, m.op === 'load_min' ? `${r}_min` : `${r}_max`);
  }
  for (const n of tabled) lines.push(`    if (!${emit(n)}) return false;`);

  // Live: the partial test (as tile_partial: the ragged last tile always is).
  lines.push(ragged);
  const partOps = operands(partRoot, 'or').sort((a, b) => Number(scans(a)) - Number(scans(b)));
  partOps.forEach((n, i) => {
    const v = emit(n);
    lines.push(i < partOps.length - 1 ? `    if (${v}) return true;` : `    part = ${v};`);
  });
  lines.push('    return true;');
  return lines;
}

/**
 * The per-tile interval tests as device lambdas, shared by the tensor-core
 * and CUDA-core kernels: `tile_live(j)` is false when no pair of KV tile j is
 * kept, `tile_partial(j)` when the mask must be evaluated per element.
 */
export function tileClassifier(spec: SpecCode, o: StagingOptions = {}): string {
  const sync = o.sync ?? '__syncthreads()';
  const head = `  // ---- tile classification (interval tests over the tile's index ranges) ----
  const int q_lo = q0, q_hi = min(row0 + BM, Nq) - 1 + (Nk - Nq);
  const int n_tiles = (Nk + BN - 1) / BN;
${spec.tileQueryLines.map((l) => l + '\n').join('')}`;
  const partial = (name: string) => `  auto ${name} = [&](int j) -> bool {
    const int kv_lo = j * BN, kv_hi = min(kv_lo + BN, Nk) - 1;
    if (kv_lo + BN > Nk) return true;
${spec.tilePartialMask.lines.join('\n')}
    return ${spec.tilePartialMask.value};
  };`;
  if (!spec.tilePerThread) {
    return `${head}  auto tile_live = [&](int j) -> bool {
    const int kv_lo = j * BN, kv_hi = min(kv_lo + BN, Nk) - 1;
${spec.tileLive.lines.join('\n')}
    return ${spec.tileLive.value};
  };
${partial('tile_partial')}
  // 32 tiles per step, lane l testing tile j + l: a window mask's leading dead tiles (block m of a causal
  // window of W keys skips about m - W / BN of them) cost a couple of steps instead of one test each.
  // Calls are block-uniform, so every lane of the warp is here.
  auto next_live = [&](int j) -> int {
    for (; j < n_tiles; j += 32) {
      const int jl = j + (int)(threadIdx.x & 31u);
      const unsigned live = __ballot_sync(0xffffffffu, jl < n_tiles && tile_live(jl));
      if (live) return j + __ffs(live) - 1;
    }
    return n_tiles;
  };`;
  }
  // The live test scans tables over each tile's keys: walking dead tiles one
  // by one would cost a dependent global round trip each. Instead thread t of
  // the block classifies tile j0 + t of a window of NTHREADS tiles (its own
  // scans: independent loads whose latencies overlap), ballots make one word
  // per warp, and the words go through shared memory (double-buffered: one
  // barrier per window) so that every thread sees the same window. Calls of
  // next_live / tile_partial are block-uniform, so the barrier is too.
  return `${head}  constexpr int SCAN_BATCH = ${o.scanBatch ?? 'BN / 4'};  // 16-byte loads in flight per thread per table scan (at most 16)
  // Per thread (no warp collectives): is tile j live; for a live tile, part = partial.
  auto tile_live = [&](int j, bool& part) -> bool {
    const int kv_lo = j * BN, kv_hi = min(kv_lo + BN, Nk) - 1;
${spec.tilePerThread.join('\n')}
  };
${partial('tile_partial_scan')}
${tileWindow(sync, o.windowBufferOutside)}`;
}

/**
 * The window of a per-thread tile test (tile_live(j, part) per thread, tile_partial_scan(j) block-uniform, n_tiles):
 * thread t classifies tile tw_base + t, ballots make one word per warp, the words go through shared memory
 * (double-buffered: one `sync` per window); next_live(j) and tile_partial(j) read them. The dK/dV kernel's items
 * (render/cuda-bwd.ts) use it too.
 */
export function tileWindow(sync: string, windowBufferOutside?: boolean): string {
  return `  // Window [tw_base, tw_base + NTHREADS): bit t of tw_bits[tw_buf][0] (word t / 32)
  // says tile tw_base + t is live, of tw_bits[tw_buf][1] that it is partial.
  __shared__ unsigned tw_bits[2][2][NTHREADS / 32];
${windowBufferOutside
    ? `  // tw_buf runs on from the previous item: windows alternate buffers across items too, so a new item's first
  // window never overwrites the words a slower warp is still reading from the last item's last window.
  int tw_base = -NTHREADS;
`
    : '  int tw_base = -NTHREADS, tw_buf = 1;\n'}  auto tile_window = [&](int j0) {
    tw_base = j0;
    tw_buf ^= 1;
    const int j = j0 + tid;
    bool part = true;
    const bool live = j < n_tiles && tile_live(j, part);
    const unsigned live_w = __ballot_sync(0xffffffffu, live), part_w = __ballot_sync(0xffffffffu, part);
    if ((tid & 31) == 0) { tw_bits[tw_buf][0][tid >> 5] = live_w; tw_bits[tw_buf][1][tid >> 5] = part_w; }
    ${sync};
  };
  auto next_live = [&](int j) -> int {
    while (j < n_tiles) {
      if (j < tw_base || j - tw_base >= NTHREADS) tile_window(j);
      for (int o = j - tw_base; o < NTHREADS; o = (o | 31) + 1) {
        const unsigned m = tw_bits[tw_buf][0][o >> 5] >> (o & 31);
        if (m) return tw_base + o + __ffs(m) - 1;
      }
      j = min(tw_base + NTHREADS, n_tiles);
    }
    return j;
  };
  auto tile_partial = [&](int j) -> bool {
    // In the window: its bit; otherwise (the window moved on past j) the scan.
    const unsigned o = (unsigned)(j - tw_base);
    return o < (unsigned)NTHREADS ? ((tw_bits[tw_buf][1][o >> 5] >> (o & 31)) & 1u) != 0u : tile_partial_scan(j);
  };`;
}

/**
 * Global pointers of this (batch, head), per-head values, the tile tests,
 * and the cp.async staging of K/V tiles (and per-tile tables): the same in
 * the tensor-core and CUDA-core kernels but for the element type and how
 * many elements one 16-byte copy moves.
 */
export interface StagingOptions {
  /** Where 16-byte chunk c of row r of stage st lands (default: padded rows of STRIDE elements). */
  kvDst?: (tile: 'sK' | 'sV') => string;
  /** The barrier among the threads that classify tiles (default: the whole block). */
  sync?: string;
  /** 16-byte loads per thread per batch of a per-thread table scan (default BN / 4; the loads take 4 registers each). */
  scanBatch?: string;
  /**
   * `#pragma unroll` of the K/V copy loop, for a producer warpgroup (its register budget is small); set, the
   * loop walks the rows of one chunk column per thread. Unset, threads stride over all chunks, fully unrolled.
   */
  copyUnroll?: number;
  /**
   * The tile window's buffer index `tw_buf` is declared by the caller, before its loop over work items
   * (a persistent kernel pastes this code once per item): see tileClassifier.
   */
  windowBufferOutside?: boolean;
  /**
   * With copyUnroll: a tile that Nk does not cut short is copied with no per-row arithmetic at all, each row's
   * shared and global address an immediate offset from the thread's first (cp.async [reg+imm]). Needs the head
   * dim (rows per pass, at render time) and the layout's bytes from a row to the next in one chunk column, which
   * must not depend on the row beyond that step (true of the swizzled atoms for steps of 8 rows).
   */
  immediateRows?: { headDim: number; rowBytes: number };
  /** Per-diagonal values carried in registers from tile to tile (CudaTiles.diagCarry; fill_tables in tile order). */
  diagCarry?: boolean;
}

/**
 * A whole tile's copy as straight-line cp.async with immediate offsets: the producer issued 74 instructions per
 * 4 cp.async in its row loop (64-bit addresses per row; Nsight Compute, causal D=128,
 * tests/cuda/results/h200-2026-12-04-ncu-d128.txt), as many warp instructions as the consumers executed.
 */
function immediateRowCopy(o: { headDim: number; rowBytes: number }, perChunk: number, bn: number, threads: number, kvDst: (tile: 'sK' | 'sV') => string): string {
  const rowsPerPass = threads / (o.headDim / perChunk), passes = bn / rowsPerPass, elemBytes = 16 / perChunk;
  if (!Number.isInteger(rowsPerPass) || !Number.isInteger(passes) || rowsPerPass % 8 !== 0) throw new Error(`load_kv: ${threads} threads, head dim ${o.headDim}, BN ${bn}: no whole passes of 8-row groups`);
  const lines: string[] = [];
  for (let p = 0; p < passes; p++) {
    const d = p * rowsPerPass * o.rowBytes, g = p * rowsPerPass * o.headDim * elemBytes;
    lines.push(`      attnc_cp_async16_at<${d}, ${g}>(dk, gk); attnc_cp_async16_at<${d}, ${g}>(dv, gv);`);
  }
  return `
    if (j * BN + BN <= Nk) {  // the whole tile is in range: every row of the column at a constant offset
      const int r = r0;
      const unsigned dk = attnc_smem_addr(${kvDst('sK')}), dv = attnc_smem_addr(${kvDst('sV')});
      const size_t off = (size_t)(j * BN + r0) * HEAD_DIM + c * ${perChunk};
      const void* const gk = gK + off;
      const void* const gv = gV + off;
${lines.join('\n')}
      return;
    }`;
}

/** The staging code runs on `tid` 0..NTHREADS-1 of the scope it is pasted in (a producer warpgroup may shadow both). */
export function kvStaging(spec: SpecCode, elem: 'unsigned short' | 'float', perChunk: 8 | 4, bm: number, bn: number, threads: number,
  o: StagingOptions = {}): string {
  const kvDst = o.kvDst ?? ((tile: 'sK' | 'sV') => `${tile} + (st * BN + r) * STRIDE + c * ${perChunk}`);
  const fill = spec.tableFill(bm, bn, threads, o.diagCarry);
  return `  const ${elem}* gQ = Q + (size_t)(bb * Hq + hq) * Nq * HEAD_DIM;
  const ${elem}* gK = K + (size_t)(bb * Hkv + hk) * Nk * HEAD_DIM;
  const ${elem}* gV = V + (size_t)(bb * Hkv + hk) * Nk * HEAD_DIM;

  // ---- values per (batch, head) ----
${spec.headLines.join('\n')}

${tileClassifier(spec, o)}
  auto load_kv = [&](int j, int st) {
    auto copy = [&](int r, int c) {
      const int kr = j * BN + r;
      const bool ok = kr < Nk;
      const size_t off = ok ? (size_t)kr * HEAD_DIM + c * ${perChunk} : 0;
      attnc_cp_async16(attnc_smem_addr(${kvDst('sK')}), gK + off, ok);
      attnc_cp_async16(attnc_smem_addr(${kvDst('sV')}), gV + off, ok);
    };${o.copyUnroll ? `
    // A thread keeps its chunk column from row to row: no division per copy, and the row's address
    // terms hoist out of the loop. This producer's address arithmetic competes with the consumers'
    // softmax for issue slots: causal D=128 ran 20% faster with it (h200-2026-12-04-copy-loop-sweep.txt).
    constexpr int ROWS_PER_PASS = NTHREADS / CHUNKS;
    static_assert(NTHREADS % CHUNKS == 0 && BN % ROWS_PER_PASS == 0, "load_kv: a thread keeps one chunk column");
    const int c = tid % CHUNKS, r0 = tid / CHUNKS;${o.immediateRows ? immediateRowCopy(o.immediateRows, perChunk, bn, threads, kvDst) : ''}
    #pragma unroll ${o.copyUnroll}
    for (int p = 0; p < BN / ROWS_PER_PASS; ++p) copy(r0 + p * ROWS_PER_PASS, c);` : `
    // Unsigned: the division and remainder by CHUNKS (a power of 2) are a shift and a mask. The producer's
    // row loop made document's short-row kernel (D=64, N=4096) 15% slower in the same sweep; why is not profiled.
    for (unsigned x = tid; x < BN * CHUNKS; x += NTHREADS) copy((int)(x / CHUNKS), (int)(x % CHUNKS));`}
  };
${fill.decls.join('\n')}${fill.decls.length ? '\n' : ''}  auto fill_tables = [&](int j, int buf) {
    const int kv0 = j * BN;
    (void)kv0; (void)buf;
${fill.body.join('\n')}
  };
`;
}
