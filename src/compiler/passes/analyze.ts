// The analyses every backend reads (ir/program.ts Analysis): dependency classes
// of the logit and the mask, the affine form of the logit, and the tile test of
// the mask. Each is its own pass; this file only runs them in order.
import type { AttentionProgram, Analysis } from '../ir/program.ts';
import { affineForm } from './affine.ts';
import { dependencyClasses } from './classes.ts';
import { tileTest } from './mask-intervals.ts';

export function analyzeProgram(p: AttentionProgram): Analysis {
  const affine = affineForm(p.logit, p.factory);
  const tile = tileTest(p.mask, p.factory);
  // Classes also cover the nodes made by the affine form, so backends can hoist a and c.
  const roots = [p.logit, p.mask, ...(affine ? [affine.a, affine.c] : [])];
  return { classOf: dependencyClasses(roots), affine, tile };
}
