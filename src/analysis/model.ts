// The spec under analysis, specialised to one query: its logit and mask as
// functions of the key distance d and the Gaussian score S.
//
// The setting (issue 6): head_dim = 64, q_len = kv_len = maxDistance + 1, the
// query at the last position (q_idx = maxDistance), so the key at distance d
// is kv_idx = q_idx - d and every distance 0..maxDistance exists; head = batch
// = 0. The paper's Gaussian assumption is on the initial score S = dot*scale,
// so dot = S / scale(d), and for an affine logit (a*dot + c, detected by the
// compiler's affine pass) L = (a/scale) * S + c: a slope a_S and an offset c
// per distance.
import type { AttentionBlock } from '../compiler/syntax/ast.ts';
import type { AttentionProgram } from '../compiler/ir/program.ts';
import type { Node } from '../compiler/ir/nodes.ts';
import { lowerAndAnalyze, UsageError } from '../compiler/compile.ts';
import { lowerBlock } from '../compiler/passes/lower.ts';
import { dependsOnDot, evalLanes, type LaneValue } from './lanes.ts';
import { nameRecord, own } from '../compiler/own.ts';

export const HEAD_DIM = 64;
/** Heads assumed when a `heads` table gets its default (ALiBi-style slopes for 8 heads). */
export const DEFAULT_HEADS = 8;
/** Distances are evaluated in batches of this many lanes (bounds memory). */
const CHUNK = 1 << 15;

export interface ModelOptions {
  maxDistance: number;
  /** Values for params; missing ones take the spec's default. */
  params?: Record<string, number>;
  tables?: Record<string, ArrayLike<number>>;
}

/** Affine logit of the keys d = lo .. hi-1: L = slope*S + offset where kept. */
export interface AffineRange { slope: Float64Array; offset: Float64Array; kept: Uint8Array }

export class SpecModel {
  readonly name: string;
  readonly program: AttentionProgram;
  readonly affine: { a: Node; c: Node } | null;
  /** The closed form applies: logit affine in the score and mask free of it. */
  readonly closedForm: boolean;
  readonly maxDistance: number;
  readonly qIdx: number;
  readonly params: Record<string, number>;
  private readonly tables: Record<string, ArrayLike<number>>;
  /** The scale program: the block without its `score =` statements, whose logit is dot*scale. */
  private readonly scaleLogit: Node;
  private readonly maskHasDot: boolean;

  constructor(block: AttentionBlock, opts: ModelOptions) {
    const { program, analysis } = lowerAndAnalyze(block);
    this.name = block.name;
    this.program = program;
    this.maxDistance = opts.maxDistance;
    this.qIdx = opts.maxDistance;
    this.params = resolveParams(program, opts.params ?? {});
    this.tables = opts.tables ?? {};
    for (const input of program.inputs) {
      if (!own(this.tables, input.name)) throw new UsageError(`input '${input.name}' (${input.elem}[${input.axis}]) is missing: pass --input ${input.name}=FILE.npy`);
    }
    // Dropping every `score =` leaves `score` = dot*scale with the spec's own
    // `scale =` (or the default), so that program's logit at dot = 1 is the scale.
    const scaleBlock: AttentionBlock = { ...block, body: block.body.filter((s) => !(s.kind === 'assign' && s.target === 'score')) };
    this.scaleLogit = lowerBlock(scaleBlock).logit;
    this.maskHasDot = dependsOnDot(program.mask);
    this.affine = analysis.affine;
    this.closedForm = analysis.affine !== null && !this.maskHasDot;
  }

  /** Leaf values for the lanes d = lo .. lo+n-1 (one query, one key per lane). */
  private leaves(lo: number, n: number, dot?: Float64Array) {
    const kv = new Float64Array(n);
    for (let i = 0; i < n; i++) kv[i] = this.qIdx - (lo + i);
    const sizes: Record<string, number> = {
      q_idx: this.qIdx, head: 0, batch: 0, q_len: this.qIdx + 1, kv_len: this.qIdx + 1, head_dim: HEAD_DIM,
    };
    return (node: Node): LaneValue => {
      switch (node.op) {
        case 'const': return Number(node.value);
        case 'param': return own(this.params, node.name!)!;
        case 'dot':
          if (!dot) throw new Error('internal error: analyze evaluated the score without samples');
          return dot;
        case 'builtin':
          if (node.name === 'kv_idx') return kv;
          if (node.name! in sizes) return sizes[node.name!];
          throw new Error(`internal error: analyze has no value for builtin ${node.name}`);
        default: throw new Error(`internal error: not a leaf: ${node.op}`);
      }
    };
  }

  private evalChunked(roots: Node[], lo: number, hi: number, each: (values: Float64Array[], start: number) => void): void {
    for (let s = lo; s < hi; s += CHUNK) {
      const n = Math.min(CHUNK, hi - s);
      const values = evalLanes(roots, { n, leaf: this.leaves(s, n), tables: this.tables });
      each(roots.map((r) => values.get(r)!), s - lo);
    }
  }

  /** The softmax scale at every distance lo .. hi-1 (it may depend on positions). */
  scales(lo: number, hi: number): Float64Array {
    const out = new Float64Array(hi - lo);
    const dotOne = (n: number) => new Float64Array(n).fill(1);
    for (let s = lo; s < hi; s += CHUNK) {
      const n = Math.min(CHUNK, hi - s);
      const v = evalLanes([this.scaleLogit], { n, leaf: this.leaves(s, n, dotOne(n)), tables: this.tables });
      out.set(v.get(this.scaleLogit)!, s - lo);
    }
    return out;
  }

  /** Slope (per unit of S) and offset of an affine logit, and the mask, for d = lo .. hi-1. */
  affineRange(lo: number, hi: number): AffineRange {
    if (!this.closedForm) throw new Error('internal error: affineRange on a spec without a closed form');
    const n = hi - lo;
    const slope = new Float64Array(n), offset = new Float64Array(n), kept = new Uint8Array(n);
    const scale = this.scales(lo, hi);
    const { a, c } = this.affine!;
    this.evalChunked([a, c, this.program.mask], lo, hi, ([av, cv, mv], at) => {
      for (let i = 0; i < av.length; i++) {
        const sc = scale[at + i];
        // dot = S/scale; a zero scale means the logit does not see the score at all.
        slope[at + i] = sc === 0 ? 0 : av[i] / sc;
        offset[at + i] = cv[i];
        kept[at + i] = mv[i] ? 1 : 0;
      }
    });
    return { slope, offset, kept };
  }

  /**
   * What the sampled-score path needs for d = lo .. hi-1: the scale, and the
   * value of every score-free node that feeds a score-dependent one (so each
   * sample re-evaluates only the few ops that see the score).
   */
  prepareRange(lo: number, hi: number): SampledRange {
    const roots = [this.program.logit, this.program.mask];
    const memo = new Map<Node, boolean>();
    roots.forEach((r) => dependsOnDot(r, memo));
    const frontier = new Set<Node>();
    for (const [node, hasDot] of memo) {
      if (hasDot) for (const a of node.args) if (!memo.get(a)) frontier.add(a);
    }
    for (const r of roots) if (!memo.get(r)) frontier.add(r);
    const list = [...frontier].filter((n) => n.op !== 'const');
    const values = new Map<Node, Float64Array>(list.map((n) => [n, new Float64Array(hi - lo)]));
    if (list.length) this.evalChunked(list, lo, hi, (vals, at) => list.forEach((n, j) => values.get(n)!.set(vals[j], at)));
    return { lo, hi, scale: this.scales(lo, hi), frontier: values };
  }

  /**
   * Logits for sampled scores: key lo+i gets score S[i]; masked keys get -Infinity.
   * Works for any spec (the logit and mask IR is evaluated per key).
   */
  sampledLogits(range: SampledRange, scores: Float64Array, out: Float64Array): void {
    const roots = [this.program.logit, this.program.mask];
    const { lo, scale } = range;
    for (let s = 0; s < scores.length; s += CHUNK) {
      const n = Math.min(CHUNK, scores.length - s);
      const dot = new Float64Array(n);
      for (let i = 0; i < n; i++) dot[i] = scale[s + i] === 0 ? 0 : scores[s + i] / scale[s + i];
      const given = new Map<Node, Float64Array>();
      for (const [node, arr] of range.frontier) given.set(node, arr.subarray(s, s + n));
      const v = evalLanes(roots, { n, leaf: this.leaves(lo + s, n, dot), given, tables: this.tables });
      const lv = v.get(roots[0])!, mv = v.get(roots[1])!;
      for (let i = 0; i < n; i++) out[s + i] = mv[i] ? lv[i] : -Infinity;
    }
  }
}

export interface SampledRange {
  lo: number;
  hi: number;
  scale: Float64Array;
  frontier: Map<Node, Float64Array>;
}

function resolveParams(program: AttentionProgram, given: Record<string, number>): Record<string, number> {
  const known = new Set(program.params.map((p) => p.name));
  for (const name of Object.keys(given)) {
    if (!known.has(name)) throw new UsageError(`spec '${program.name}' has no param '${name}' (params: ${[...known].join(', ') || 'none'})`);
  }
  const out = nameRecord<number>();
  for (const p of program.params) {
    const v = own(given, p.name) ?? p.default;
    if (p.type === 'i32' && !Number.isInteger(v)) throw new UsageError(`param '${p.name}' is i32: ${v} is not an integer`);
    out[p.name] = v;
  }
  return out;
}
