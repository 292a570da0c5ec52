// `attnc explain SPEC`: the IR, each value's dependency class, the affine
// form of the logit, and how a sample tiling is classified by the masks.
import type { Command } from 'commander';
import { lowerAndAnalyze } from '../compiler/compile.ts';
import { explain, explainJson } from '../compiler/explain.ts';
import { collectParam, loadSpec, parseIntArg, runCommand } from './common.ts';

interface ExplainFlags {
  entry?: string;
  len: number;
  qLen?: number;
  tile: number;
  param: Record<string, number>;
  json?: boolean;
}

export function registerExplain(program: Command): void {
  program
    .command('explain')
    .description('print the IR, dependency classes, affine form and tile classification of a spec')
    .argument('<spec>', 'the .attn file')
    .option('--entry <name>', 'the attention block when the file has several')
    .option('--len <N>', 'kv length of the sample tiling', parseIntArg('--len'), 512)
    .option('--q-len <N>', 'query length of the sample tiling (default: --len)', parseIntArg('--q-len'))
    .option('--tile <T>', 'square tile size of the sample tiling', parseIntArg('--tile'), 64)
    .option('--param <name=value>', 'param value for the sample tiling (repeatable)', collectParam, {})
    .option('--json', 'print as JSON')
    .action((spec: string, flags: ExplainFlags) => runCommand(() => explainCommand(spec, flags)));
}

function explainCommand(specPath: string, flags: ExplainFlags): void {
  const { block } = loadSpec(specPath, flags.entry);
  const { program, analysis } = lowerAndAnalyze(block);
  const params = Object.fromEntries(program.params.map((p) => [p.name, flags.param[p.name] ?? p.default]));
  const opts = { tile: { bm: flags.tile, bn: flags.tile }, sample: { q_len: flags.qLen ?? flags.len, kv_len: flags.len, params } };
  if (flags.json) process.stdout.write(JSON.stringify(explainJson(program, analysis, opts), null, 2) + '\n');
  else process.stdout.write(explain(program, analysis, opts));
}
