// `attnc compile SPEC --target wgsl|cuda|flex|ts|torch -o DIR`: writes the kernel source and its manifest
// (the ts module embeds its WGSL kernel and manifest, the torch module its CUDA kernels and their launches).
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { artifactHash, lowerAndAnalyze, renderKernel, UsageError, type Target } from '../compiler/compile.ts';
import { renderFlex } from '../compiler/render/flex.ts';
import { renderTorch, torchModuleName } from '../compiler/render/torch.ts';
import { BACKWARD_TUNING_SYNTAX, parseBackwardTuning, type CudaBackwardTuning } from '../compiler/render/cuda-bwd-tuning.ts';
import { cudaHeadDimProblem } from '../compiler/schedule/cuda-tiles.ts';
import { emitJavaScript, renderTsModule } from '../compiler/render/ts-module.ts';
import { renderTsBackwardModule } from '../compiler/render/ts-module-bwd.ts';
import { printBlock } from '../compiler/syntax/print.ts';
import { printProgram } from '../compiler/ir/print.ts';
import { VERSION } from '../version.ts';
import { buildCubin } from './cubin.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import { DEFAULT_WEBGPU_LIMITS } from '../runtime/device.ts';
import { DTYPES, loadSpec, openBackend, parseChoice, parseIntArg, runCommand } from './common.ts';

interface CompileFlags {
  target: Target | 'flex' | 'ts' | 'torch';
  dtype: StorageDType;
  headDim: number;
  entry?: string;
  out?: string;
  limits: 'default' | 'device';
  arch: 'sm_80' | 'sm_90a';
  json?: boolean;
  dump?: 'ast' | 'ir' | 'analysis';
  cubin?: string;
  exactLse?: boolean;
  backward?: boolean;
  cudaBwd?: CudaBackwardTuning;
}

export function registerCompile(program: Command): void {
  program
    .command('compile')
    .description('compile a spec to a kernel (source + manifest.json)')
    .argument('<spec>', 'the .attn file')
    .option('--target <target>', 'wgsl, cuda, flex (a PyTorch FlexAttention module), ts (a TypeScript module that runs the WGSL kernel on a GPUDevice) or torch (a Python module that runs the CUDA kernel from PyTorch)', parseChoice(['wgsl', 'cuda', 'flex', 'ts', 'torch'] as const), 'wgsl')
    .option('--dtype <dtype>', 'storage dtype: f32, f16 (WGSL and CUDA) or bf16 (CUDA)', parseChoice(DTYPES), 'f32')
    .option('--head-dim <D>', 'head dimension', parseIntArg('--head-dim'), 64)
    .option('--entry <name>', 'the attention block to compile when the file has several')
    .option('--limits <which>', 'WGSL tile sizes for the WebGPU default limits (portable) or this machine\'s adapter', parseChoice(['default', 'device'] as const), 'default')
    .option('--arch <arch>', 'CUDA kernels for: sm_90a (Hopper, wgmma; runs only there) or sm_80 (mma.sync; Ampere and later)', parseChoice(['sm_80', 'sm_90a'] as const), 'sm_90a')
    .option('-o, --out <dir>', 'output folder (default: print the source to stdout)')
    .option('--cubin <arch>', 'with --target cuda and -o: also build a cubin with nvcc (e.g. sm_90a)')
    .option('--exact-lse', 'CUDA: row sums in f32 in the softmax, for an LSE within ~1e-6 of float64 (by default the sm_90a kernel may take them on the tensor cores: faster, LSE within ~1e-3)')
    .option('--backward', 'with --target wgsl, ts or cuda: the backward kernels (dQ, dK, dV from Q, K, V, O, LSE and dO) instead of the forward kernel')
    .option('--cuda-bwd <variants>', `with --target torch, or cuda --backward: backward kernel variants, ${BACKWARD_TUNING_SYNTAX}`, parseBackwardTuningArg)
    .option('--json', 'print the manifest as JSON')
    .option('--dump <stage>', 'print the value after a stage instead of compiling: ast, ir or analysis', parseChoice(['ast', 'ir', 'analysis'] as const))
    .action((spec: string, flags: CompileFlags) => runCommand(() => compileCommand(spec, flags)));
}

async function compileCommand(specPath: string, flags: CompileFlags): Promise<void> {
  if (flags.cubin && (flags.target !== 'cuda' || !flags.out)) throw new UsageError('--cubin needs --target cuda and -o DIR');
  if (flags.cubin && flags.arch === 'sm_90a' && flags.cubin !== 'sm_90a') {
    throw new UsageError(`--cubin ${flags.cubin}: the sm_90a kernels (wgmma) build only for sm_90a; add --arch sm_80 for other GPUs`);
  }
  if (flags.exactLse && flags.target !== 'cuda' && flags.target !== 'torch') throw new UsageError('--exact-lse is for --target cuda or torch');
  if (flags.backward && flags.target !== 'wgsl' && flags.target !== 'ts' && flags.target !== 'cuda') throw new UsageError('--backward is for --target wgsl, ts or cuda (the torch and flex modules carry their gradients already)');
  if (flags.cudaBwd && !(flags.target === 'torch' || (flags.target === 'cuda' && flags.backward))) throw new UsageError('--cuda-bwd is for --target torch, or --target cuda --backward');
  if ((flags.target === 'wgsl' || flags.target === 'ts') && flags.dtype === 'bf16') throw new UsageError(`--target ${flags.target} takes --dtype f32 or f16 (bf16 is CUDA only)`);
  const headDimProblem = flags.target === 'cuda' || flags.target === 'torch' ? cudaHeadDimProblem(flags.dtype, flags.headDim) : null;
  if (headDimProblem) throw new UsageError(headDimProblem);
  const { text, block } = loadSpec(specPath, flags.entry);
  let limits = DEFAULT_WEBGPU_LIMITS;
  if ((flags.target === 'wgsl' || flags.target === 'ts') && flags.limits === 'device') {
    const backend = await openBackend('webgpu');
    limits = backend.limits();
    backend.dispose();
  }
  if (flags.dump === 'ast') return void process.stdout.write(printBlock(block) + '\n');
  const lowered = lowerAndAnalyze(block);
  if (flags.dump === 'ir') return void process.stdout.write(printProgram(lowered.program) + '\n');
  if (flags.dump === 'analysis') return void process.stdout.write(printProgram(lowered.program, lowered.analysis.classOf) + '\n');
  if (flags.target === 'flex') return writeFlex(text, block.name, lowered, flags);
  if (flags.target === 'torch') return writeTorch(text, block.name, lowered, flags);
  const kernel = renderKernel(text, block, lowered, {
    target: flags.target === 'ts' ? 'wgsl' : flags.target, dtype: flags.dtype, headDim: flags.headDim, entry: flags.entry, limits, arch: flags.arch, exactLse: flags.exactLse,
    pass: flags.backward ? 'backward' : 'forward', cudaBackward: flags.cudaBwd,
  });
  if (flags.target === 'ts') {
    // The header's regeneration command: the file's base name only, in characters that cannot end a comment line.
    const file = basename(specPath).replace(/[^\w.-]/g, '_');
    const command = `npx attnc compile ${file} --target ts --dtype ${flags.dtype} --head-dim ${flags.headDim}${flags.entry ? ` --entry ${block.name}` : ''}${flags.limits === 'device' ? ' --limits device' : ''}${flags.backward ? ' --backward' : ''}`;
    kernel.source = await (flags.backward ? renderTsBackwardModule : renderTsModule)(kernel, { command });
  }
  const ext = { wgsl: 'wgsl', cuda: 'cu', ts: 'ts' }[flags.target];
  if (flags.out) {
    mkdirSync(flags.out, { recursive: true });
    const base = `${block.name}.${flags.dtype}.d${flags.headDim}${flags.backward ? '.bwd' : ''}`;
    writeFileSync(join(flags.out, `${base}.${ext}`), kernel.source);
    if (flags.target === 'ts') {
      // The module embeds its manifest; the JavaScript and its declarations serve pages without a TypeScript tool chain.
      const { js, dts } = await emitJavaScript(kernel.source, base);
      writeFileSync(join(flags.out, `${base}.js`), js);
      writeFileSync(join(flags.out, `${base}.d.ts`), dts);
      if (!flags.json) process.stdout.write(`wrote ${join(flags.out, `${base}.ts`)}, ${base}.js and ${base}.d.ts\n`);
    } else {
      writeFileSync(join(flags.out, `${base}.manifest.json`), JSON.stringify(kernel.manifest, null, 2) + '\n');
      if (!flags.json) process.stdout.write(`wrote ${join(flags.out, `${base}.${ext}`)} and ${base}.manifest.json\n`);
    }
    if (flags.cubin) {
      const cubin = join(flags.out, `${base}.${flags.cubin}.cubin`);
      buildCubin(join(flags.out, `${base}.${ext}`), cubin, flags.cubin);
      if (!flags.json) process.stdout.write(`wrote ${cubin}\n`);
    }
  } else if (!flags.json) {
    process.stdout.write(kernel.source);
  }
  if (flags.json) process.stdout.write(JSON.stringify(kernel.manifest, null, 2) + '\n');
}

function parseBackwardTuningArg(v: string): CudaBackwardTuning | undefined {
  const t = parseBackwardTuning(v);
  if (typeof t === 'string') throw new InvalidArgumentError(t);
  return t;
}

function writeFlex(text: string, name: string, lowered: ReturnType<typeof lowerAndAnalyze>, flags: CompileFlags): void {
  const hash = artifactHash(text, name, { target: 'flex' });
  const source = renderFlex(lowered, { hash, version: VERSION });
  if (!flags.out) {
    process.stdout.write(source);
    return;
  }
  mkdirSync(flags.out, { recursive: true });
  const path = join(flags.out, `${name}_flex.py`);
  writeFileSync(path, source);
  process.stdout.write(flags.json ? JSON.stringify({ spec: name, target: 'flex', path, hash }) + '\n' : `wrote ${path}\n`);
}

function writeTorch(text: string, name: string, lowered: ReturnType<typeof lowerAndAnalyze>, flags: CompileFlags): void {
  const hash = artifactHash(text, name, { target: 'torch', dtype: flags.dtype, headDim: flags.headDim, exactLse: !!flags.exactLse, cudaBackward: flags.cudaBwd });
  const source = renderTorch(lowered, { dtype: flags.dtype, headDim: flags.headDim, hash, version: VERSION, exactLse: flags.exactLse, cudaBackward: flags.cudaBwd });
  if (!flags.out) {
    process.stdout.write(source);
    return;
  }
  mkdirSync(flags.out, { recursive: true });
  const path = join(flags.out, `${torchModuleName(name, flags.dtype, flags.headDim)}.py`);
  writeFileSync(path, source);
  process.stdout.write(flags.json ? JSON.stringify({ spec: name, target: 'torch', path, hash }) + '\n' : `wrote ${path}\n`);
}
