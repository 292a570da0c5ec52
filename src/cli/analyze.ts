// `attnc analyze SPEC`: measures the two scale-invariance conditions of
// Anson, Wang & Aitchison (2025) for a spec under Gaussian scores, prints a
// table, and optionally writes JSON and a two-panel SVG plot (issue 6).
// Exit 0 whatever the verdict (it is a measurement, not a check); 1 for spec
// errors; 2 for bad flags or files.
import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { UsageError } from '../compiler/compile.ts';
import { lowerBlock } from '../compiler/passes/lower.ts';
import { SpecModel } from '../analysis/model.ts';
import { analyzeModel, type SpecAnalysis } from '../analysis/analyze.ts';
import { analysisTables } from '../analysis/tables.ts';
import { distanceRanges, VERDICT_MIN_START } from '../analysis/ranges.ts';
import { formatAnalysis, formatSummary, jsonText } from '../analysis/report.ts';
import { collectInput, collectParam, loadSpec, runCommand } from './common.ts';

interface AnalyzeFlags {
  entry?: string;
  sigma: number;
  delta: number;
  maxDistance: number;
  param: Record<string, number>;
  input: Record<string, string>;
  json?: string;
  svg?: string;
  compare?: string[];
  seed: number;
  samples: number;
}

/** Largest supported --max-distance: each range is held in memory (the last one has 0.9 * max keys). */
const MAX_DISTANCE_LIMIT = 1e7;

const number = (name: string, ok: (x: number) => boolean, what: string) => (v: string): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new InvalidArgumentError(`${name} must be ${what}, got '${v}'`);
  return x;
};

export function registerAnalyze(program: Command): void {
  program
    .command('analyze')
    .description("measure the paper's two scale-invariance conditions (total attention and sparsity per range of distances) under Gaussian scores")
    .argument('<spec>', 'the .attn file')
    .option('--entry <name>', 'the attention block to analyse when the file has several')
    .option('--sigma <x>', 'standard deviation of the scores S = dot*scale', number('--sigma', (x) => x > 0, 'a positive number'), 1)
    .option('--delta <x>', 'ranges of distances are [t, t*delta) for t = 1, delta, delta^2, ...', number('--delta', (x) => x > 1, 'a number > 1'), 10)
    .option('--max-distance <n>', 'largest key distance (the query sits at this position)',
      number('--max-distance', (x) => Number.isInteger(x) && x >= 1 && x <= MAX_DISTANCE_LIMIT, `an integer in 1..${MAX_DISTANCE_LIMIT}`), 1e6)
    .option('--param <name=value>', 'set a runtime param of every spec that declares it (repeatable)', collectParam, {})
    .option('--input <name=file>', 'a table input from a .npy file (repeatable); f32[heads] tables default to 8-head ALiBi slopes', collectInput, {})
    .option('--json <file>', 'write the results as JSON')
    .option('--svg <file>', 'write a two-panel plot (total attention, entropy) as SVG')
    .option('--compare <specs...>', 'more .attn files to analyse side by side')
    .option('--seed <n>', 'seed of the Monte-Carlo streams', number('--seed', (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32, 'an integer in 0..2^32-1'), 0)
    .option('--samples <n>', 'Monte-Carlo replicas per range', number('--samples', (x) => Number.isInteger(x) && x >= 2, 'an integer >= 2'), 32)
    .action((spec: string, flags: AnalyzeFlags) => runCommand(() => analyzeBody(spec, flags)));
}

function checkEnoughRanges(delta: number, maxDistance: number): void {
  const verdictRanges = distanceRanges(delta, maxDistance).filter((r) => r.start >= VERDICT_MIN_START);
  if (verdictRanges.length >= 2) return;
  let needed = 1;
  while (distanceRanges(delta, needed).filter((r) => r.start >= VERDICT_MIN_START).length < 2) needed = Math.ceil(needed * delta);
  throw new UsageError(`--max-distance ${maxDistance} leaves ${verdictRanges.length} range(s) starting at t >= ${VERDICT_MIN_START} with --delta ${delta}; the verdict needs two (use --max-distance ${needed} or more)`);
}

async function analyzeBody(specPath: string, flags: AnalyzeFlags): Promise<void> {
  checkEnoughRanges(flags.delta, flags.maxDistance);
  const paths = [specPath, ...(flags.compare ?? [])];
  // Load (and check) every spec before the long work starts.
  const specs = paths.map((path, i) => ({ path, block: loadSpec(path, i === 0 ? flags.entry : undefined).block }));
  const declared = specs.map(({ block }) => lowerBlock(block));
  // --param and --input go to every spec that declares the name.
  for (const name of Object.keys(flags.param)) {
    if (!declared.some((d) => d.params.some((p) => p.name === name))) throw new UsageError(`no spec has a param '${name}'`);
  }
  for (const name of Object.keys(flags.input)) {
    if (!declared.some((d) => d.inputs.some((p) => p.name === name))) throw new UsageError(`no spec has an input '${name}'`);
  }
  const models = specs.map(({ block }, i) => {
    const { params: ps, inputs } = declared[i];
    const params = Object.fromEntries(Object.entries(flags.param).filter(([k]) => ps.some((p) => p.name === k)));
    const files = Object.fromEntries(Object.entries(flags.input).filter(([k]) => inputs.some((p) => p.name === k)));
    return new SpecModel(block, { maxDistance: flags.maxDistance, params, tables: analysisTables(inputs, files, flags.maxDistance) });
  });

  const analyses: SpecAnalysis[] = [];
  for (const [i, model] of models.entries()) {
    const bar = progressBar(model.name);
    try {
      analyses.push(analyzeModel(model, {
        sigma: flags.sigma, delta: flags.delta, samples: flags.samples, seed: flags.seed,
        onRange: bar ? (done, total) => { if (done === 1) bar.start(total, 0); bar.update(done); } : undefined,
      }));
    } finally {
      bar?.stop();
    }
    process.stdout.write((i ? '\n' : '') + formatAnalysis(analyses[i], specs[i].path));
  }
  if (analyses.length > 1) process.stdout.write('\n' + formatSummary(analyses));
  if (flags.json) writeOut(flags.json, jsonText(analyses), '--json');
  if (flags.svg) {
    // vega is loaded only when a plot is asked for: it adds a second to startup.
    const { plotSvg } = await import('../analysis/plot.ts');
    writeOut(flags.svg, await plotSvg(analyses), '--svg');
  }
}

/** A progress bar on stderr, only when a person is watching it. */
function progressBar(name: string): SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  return new SingleBar({ format: `${name} {bar} {value}/{total} ranges`, stream: process.stderr, clearOnComplete: true, hideCursor: true });
}

function writeOut(path: string, text: string, flag: string): void {
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw new UsageError(`${flag}: cannot write '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
