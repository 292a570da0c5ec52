// `attnc explain SPEC`: the IR, each value's dependency class, the affine
// form of the logit, and how a sample tiling is classified by the masks.
import type { Command } from 'commander';
import { lowerAndAnalyze, renderKernel, UsageError } from '../compiler/compile.ts';
import { tilesLineOf } from '../compiler/render/cuda.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import { DEFAULT_WEBGPU_LIMITS } from '../runtime/device.ts';
import { explain, explainJson } from '../compiler/explain.ts';
import { BACKENDS, collectParam, DTYPES, loadSpec, parseChoice, parseIntArg, runCommand, type BackendName } from './common.ts';
import { own } from '../compiler/own.ts';

interface ExplainFlags {
  entry?: string;
  len: number;
  qLen?: number;
  tile?: number;
  backend?: BackendName;
  dtype: StorageDType;
  headDim: number;
  arch: 'sm_80' | 'sm_90a';
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
    .option('--tile <T>', 'square tile size of the sample tiling (default 64, or the kernel\'s tiles with --backend)', parseIntArg('--tile'))
    .option('--backend <name>', 'use the tile sizes of this backend\'s kernel (webgpu: portable default limits)', parseChoice(BACKENDS))
    .option('--dtype <dtype>', 'with --backend: the storage dtype of the kernel', parseChoice(DTYPES), 'f16')
    .option('--head-dim <D>', 'with --backend: the head dimension of the kernel', parseIntArg('--head-dim'), 64)
    .option('--arch <arch>', 'with --backend cuda: sm_90a (Hopper, wgmma) or sm_80 (mma.sync)', parseChoice(['sm_80', 'sm_90a'] as const), 'sm_90a')
    .option('--param <name=value>', 'param value for the sample tiling (repeatable)', collectParam, {})
    .option('--json', 'print as JSON')
    .action((spec: string, flags: ExplainFlags) => runCommand(() => explainCommand(spec, flags)));
}

function explainCommand(specPath: string, flags: ExplainFlags): void {
  const { text, block } = loadSpec(specPath, flags.entry);
  const lowered = lowerAndAnalyze(block);
  const { program, analysis } = lowered;
  const params = Object.fromEntries(program.params.map((p) => [p.name, own(flags.param, p.name) ?? p.default]));
  let tile = { bm: flags.tile ?? 64, bn: flags.tile ?? 64 };
  let kernel: Record<string, unknown> | undefined;  // --json: what --backend's kernel is
  if (flags.backend) {
    // The tiling the backend's kernel really uses (rendering needs no device).
    if (flags.backend === 'webgpu' && flags.dtype === 'bf16') throw new UsageError('--backend webgpu takes --dtype f32 or f16');
    const target = flags.backend === 'webgpu' ? 'wgsl' : 'cuda';
    const arch = target === 'cuda' ? flags.arch : undefined;
    const { manifest, source } = renderKernel(text, block, lowered, { target, dtype: flags.dtype, headDim: flags.headDim, limits: DEFAULT_WEBGPU_LIMITS, arch });
    tile = { bm: flags.tile ?? manifest.tile.bm, bn: flags.tile ?? manifest.tile.bn };
    const family = manifest.abi && 'kernel' in manifest.abi ? ` ${String(manifest.abi.kernel)}` : '';
    // The CUDA source's own description of its tiling and softmax (its header's Tiles line).
    const plan = target === 'cuda' ? tilesLineOf(source) : undefined;
    // Other kernels of the source and the calls they serve (abi.variants: short rows up to maxNk keys, long rows from minNq query rows).
    const variants = target === 'cuda' ? ((manifest.abi as { variants?: Array<{ entryPoint: string; maxNk?: number; minNq?: number }> }).variants ?? [])
      .map((v) => ({ entryPoint: v.entryPoint, maxNk: v.maxNk, minNq: v.minNq, plan: tilesLineOf(source, v.entryPoint) })) : [];
    kernel = { backend: flags.backend, family: family.trim() || undefined, dtype: flags.dtype, headDim: flags.headDim, arch, tile: manifest.tile, grid: manifest.grid, plan, ...(variants.length ? { variants } : {}) };
    const when = (v: (typeof variants)[number]) => [v.maxNk !== undefined ? `Nk <= ${v.maxNk}` : '', v.minNq !== undefined ? `Nq >= ${v.minNq}` : ''].filter(Boolean).join(', ');
    const variantLines = variants.map((v) => `  for calls with ${when(v)}: ${v.entryPoint}, ${v.plan}\n`).join('');
    if (!flags.json) process.stdout.write(`${flags.backend}${family} kernel (${flags.dtype}, D=${flags.headDim}${arch ? `, ${arch}` : ''}): ${manifest.tile.bm}x${manifest.tile.bn} tiles, ${manifest.tile.threads} threads, grid ${manifest.grid}\n${plan ? `  ${plan}\n` : ''}${variantLines}\n`);
  }
  const opts = { tile, sample: { q_len: flags.qLen ?? flags.len, kv_len: flags.len, params } };
  if (flags.json) process.stdout.write(JSON.stringify({ ...explainJson(program, analysis, opts), ...(kernel ? { kernel } : {}) }, null, 2) + '\n');
  else process.stdout.write(explain(program, analysis, opts));
}
