// Registers and spills of generated CUDA kernels, from nvcc's ptxas (-Xptxas -v), for tilings that are not
// defaults: what a register budget allows before a kernel goes to a GPU. No GPU needed. ptxas reports the
// registers a thread starts with (the launch bound); warp-specialized kernels then move them with setmaxnreg, and
// the table shows those budgets (producer / consumers) beside it.
//   npx tsx scripts/ptxas-report.ts [--specs causal,scale_invariant] [--D 64] [--dtype bf16] [--arch sm_90a]
//     [--variants default,12x128p3o,12x96p3oP]   (the labels of scripts/tile-variants.ts, as cuda-bench takes them)
//     [--json]   one JSON object per kernel instead of the table
// A tiling the schedule refuses prints its reason. Exit 1 when nvcc fails on a source, 2 on bad arguments.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderCuda } from '../src/compiler/render/cuda.ts';
import type { StorageDType } from '../src/compiler/manifest.ts';
import { loadExamples } from '../tests/cuda/suite.ts';
import { parseTileVariant, TILE_VARIANT_SYNTAX } from './tile-variants.ts';
import { argValue as arg, failWith } from './script-args.ts';

const fail = failWith('ptxas-report');
const names = arg('specs', 'causal,scale_invariant').split(',');
const dims = arg('D', '64').split(',').map(Number);
const dtype = arg('dtype', 'bf16') as StorageDType;
const arch = arg('arch', 'sm_90a') as 'sm_80' | 'sm_90a';
const json = process.argv.includes('--json');
if (!['f32', 'f16', 'bf16'].includes(dtype)) fail(`--dtype ${dtype}: f32, f16 or bf16`);
if (arch !== 'sm_80' && arch !== 'sm_90a') fail(`--arch ${arch}: sm_80 or sm_90a`);
const variants = arg('variants', 'default').split(',').map((s) => parseTileVariant(s) ?? fail(`--variants: ${s}: expected ${TILE_VARIANT_SYNTAX}`));
const specs = loadExamples(names);
const missing = names.filter((n) => !specs.some((s) => s.name === n));
if (missing.length) fail(`no example named ${missing.join(', ')} (examples/*.attn)`);
const nvcc = process.env.NVCC ?? 'nvcc';
const work = mkdtempSync(join(tmpdir(), 'attnc-ptxas-'));

interface Job { spec: string; D: number; label: string; file: string; budgets: Record<string, string> }
const jobs: Job[] = [];
const rows: Array<Record<string, unknown>> = [];
for (const s of specs) for (const D of dims) for (const v of variants) {
  try {
    const k = renderCuda(s.lowered, { dtype, headDim: D, hash: 'ptxas', version: 'ptxas', arch, tiles: v.tiles });
    const file = join(work, `${s.name}-${D}-${jobs.length}.cu`);
    writeFileSync(file, k.source);
    // ptxas reports the launch budget; setmaxnreg then moves registers from the producer to the consumers. The header
    // says each kernel's: the main one on its Tiles line, a short- or long-row variant on its own line, after its name.
    const budgets: Record<string, string> = {};
    for (const line of k.source.split('\n').filter((l) => /^\/\/ (Tiles|Short rows|Long rows)/.test(l))) {
      const b = /registers (\d+) \/ (\d+) per thread/.exec(line);
      const entry = line.startsWith('// Tiles') ? k.manifest.entryPoint : /\): (\w+),/.exec(line)?.[1];
      if (b && entry) budgets[entry] = `${b[1]} / ${b[2]}`;
    }
    jobs.push({ spec: s.name, D, label: v.label, file, budgets });
  } catch (e) {
    rows.push({ spec: s.name, D, variant: v.label, refused: (e as Error).message.split('\n')[0] });
  }
}

function ptxas(job: Job): Promise<{ ok: boolean; log: string }> {
  return new Promise((resolve) => {
    const p = spawn(nvcc, ['-c', '-o', '/dev/null', `-gencode=arch=compute_${arch.slice(3)},code=${arch}`, '-Xptxas', '-v', job.file]);
    let log = '';
    p.stdout.on('data', (d) => (log += d));
    p.stderr.on('data', (d) => (log += d));
    p.on('error', (e) => resolve({ ok: false, log: `${nvcc}: ${e.message}` }));
    p.on('close', (code) => resolve({ ok: code === 0, log }));
  });
}

let status = 0;
const queue = [...jobs];
await Promise.all([0, 1].map(async () => {  // two at a time: each nvcc runs cicc and ptxas in turn
  for (let job = queue.shift(); job; job = queue.shift()) {
    const r = await ptxas(job);
    if (!r.ok) {
      status = 1;
      rows.push({ spec: job.spec, D: job.D, variant: job.label, nvccFailed: r.log.split('\n').slice(0, 5).join(' ') });
      continue;
    }
    for (const m of r.log.matchAll(/Compiling entry function '(\w+)' for '\w+'[\s\S]*?(\d+) bytes spill stores, (\d+) bytes spill loads[\s\S]*?Used (\d+) registers/g)) {
      rows.push({ spec: job.spec, D: job.D, variant: job.label, entry: m[1], registers: Number(m[4]), setmaxnreg: job.budgets[m[1]] ?? '', spillStores: Number(m[2]), spillLoads: Number(m[3]) });
    }
  }
}));
rmSync(work, { recursive: true, force: true });

const key = (r: Record<string, unknown>) => `${r.spec} ${String(r.D).padStart(3)} ${variants.findIndex((v) => v.label === r.variant)}`;
rows.sort((a, b) => key(a).localeCompare(key(b)));
for (const r of rows) {
  if (json) { console.log(JSON.stringify(r)); continue; }
  const head = `${String(r.spec).padEnd(24)} D${String(r.D).padEnd(4)}${String(r.variant).padEnd(16)}`;
  if (r.refused) console.log(`${head}refused: ${r.refused}`);
  else if (r.nvccFailed) console.log(`${head}nvcc failed: ${r.nvccFailed}`);
  else console.log(`${head}${String(r.registers).padStart(4)} registers${r.setmaxnreg ? ` (producer / consumers ${r.setmaxnreg})` : ''}  spills ${r.spillStores} / ${r.spillLoads} bytes${(r.spillStores as number) > 0 ? '  SPILLS' : ''}  ${String(r.entry).endsWith('_short') ? '(short-row kernel)' : String(r.entry).endsWith('_long') ? '(long-row kernel)' : ''}`);
}
process.exit(status);
