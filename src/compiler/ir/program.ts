// What lowering produces and what every backend consumes: one attention block
// as IR expressions plus the results of the analyses (passes/). Renderers read
// only this, never the AST.
import type { TableAxis } from '../syntax/ast.ts';
import type { IrFactory, Node } from './nodes.ts';

export interface ParamInfo {
  name: string;
  type: 'i32' | 'f32';
  default: number;
}

export interface InputInfo {
  name: string;
  elem: 'i32' | 'f32';
  axis: TableAxis;
}

/** A lowered attention block. */
export interface AttentionProgram {
  name: string;
  params: ParamInfo[];
  inputs: InputInfo[];
  /**
   * The final logit of a (query, key) pair, f32, in terms of the leaf `dot`
   * (raw q·k) and the other leaves. The softmax scale is already folded in
   * (the initial score is `dot * scale`).
   */
  logit: Node;
  /** AND of every `mask` statement (`const true` when there is none). */
  mask: Node;
  factory: IrFactory;
}

/**
 * What a value depends on, from cheapest to dearest:
 * const: nothing; head: batch/head/sizes/params; row: q_idx too;
 * col: kv_idx (not q_idx); diag: positions only through q_idx - kv_idx;
 * elem: the score, or both positions otherwise.
 */
export type DepClass = 'const' | 'head' | 'row' | 'col' | 'diag' | 'elem';

export interface TileTest {
  /** bool IR over q_lo/q_hi/kv_lo/kv_hi (+ head/batch/sizes/params): false => no pair of the tile is kept. */
  canBeTrue: Node;
  /** false => every pair of the tile is kept, the mask need not be evaluated. */
  canBeFalse: Node;
}

export interface Analysis {
  classOf: Map<Node, DepClass>;
  /** logit == a * dot + c with a, c free of `dot` (null when not affine). */
  affine: { a: Node; c: Node } | null;
  tile: TileTest;
}

export interface LoweredKernel {
  program: AttentionProgram;
  analysis: Analysis;
}
