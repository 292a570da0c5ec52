// `attnc run SPEC --q Q.npy --k K.npy --v V.npy -o OUT.npy`: one attention
// call on a backend (or the float64 reference) with inputs from .npy files;
// with `--grad-o dO.npy --dq/--dk/--dv FILE`, its backward pass too.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { lowerAndAnalyze, renderKernel, UsageError } from '../compiler/compile.ts';
import { referenceBackward } from '../runtime/reference-backward.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import { readNpy, toFloat32, toInt32, writeNpy } from '../runtime/npy.ts';
import { completeCall, runKernel, runReference } from '../runtime/execute.ts';
import { nameRecord } from '../compiler/own.ts';
import {
  checkDtype, collectInput, collectParam, DTYPES, loadSpec, openBackend, parseChoice, readBytes, runCommand,
  RUNNERS, type RunnerName,
} from './common.ts';

interface RunFlags {
  backend: RunnerName | 'reference';
  q: string; k: string; v: string;
  param: Record<string, number>;
  input: Record<string, string>;
  dtype: StorageDType;
  entry?: string;
  out: string;
  lse?: string;
  gradO?: string;
  dq?: string; dk?: string; dv?: string;
  json?: boolean;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a spec on Q, K, V from .npy files and write O (and LSE, and with --grad-o the gradients) as float32 .npy')
    .argument('<spec>', 'the .attn file')
    .requiredOption('--q <file>', 'queries, float32 .npy [B, Hq, Nq, D]')
    .requiredOption('--k <file>', 'keys, float32 .npy [B, Hkv, Nk, D]')
    .requiredOption('--v <file>', 'values, float32 .npy [B, Hkv, Nk, D]')
    .requiredOption('-o, --out <file>', 'output O, float32 .npy [B, Hq, Nq, D]')
    .option('--lse <file>', 'also write LSE, float32 .npy [B, Hq, Nq]')
    .option('--grad-o <file>', 'also run the backward pass on this dO (float32 .npy [B, Hq, Nq, D]); webgpu, cuda (f16/bf16) or reference')
    .option('--dq <file>', 'with --grad-o: write dQ, float32 .npy [B, Hq, Nq, D]')
    .option('--dk <file>', 'with --grad-o: write dK, float32 .npy [B, Hkv, Nk, D]')
    .option('--dv <file>', 'with --grad-o: write dV, float32 .npy [B, Hkv, Nk, D]')
    .option('--backend <name>', 'webgpu, cuda, ts (the --target ts module, on WebGPU), torch (the --target torch module, from PyTorch) or reference (float64 on the CPU)', parseChoice([...RUNNERS, 'reference'] as const), 'webgpu')
    .option('--param <name=value>', 'set a runtime param (repeatable)', collectParam, {})
    .option('--input <name=file>', 'a table input from a .npy file, float32 or int32 (repeatable)', collectInput, {})
    .option('--dtype <dtype>', 'storage dtype of the kernel: inputs are converted before the call', parseChoice(DTYPES), 'f32')
    .option('--entry <name>', 'the attention block to run when the file has several')
    .option('--json', 'print a JSON summary (device, shapes, time) instead of a line')
    .action((spec: string, flags: RunFlags) => runCommand(() => runCommandBody(spec, flags)));
}

function readTensor(path: string, what: string, rank: number) {
  const arr = readNpy(readBytes(path, what), path);
  if (arr.shape.length !== rank) throw new UsageError(`${what} '${path}' must have rank ${rank}, has shape [${arr.shape.join(', ')}]`);
  return { shape: arr.shape, data: toFloat32(arr, `${what} '${path}'`) };
}

function readTable(path: string, name: string): Int32Array | Float32Array {
  const arr = readNpy(readBytes(path, `input '${name}'`), path);
  if (arr.shape.length !== 1) throw new UsageError(`input '${name}' ('${path}') must be 1-D, has shape [${arr.shape.join(', ')}]`);
  // int64 (numpy's default integer) is range-checked, never silently wrapped.
  const what = `input '${name}' ('${path}')`;
  return arr.dtype === 'i32' || arr.dtype === 'i64' ? toInt32(arr, what) : toFloat32(arr, what);
}

async function runCommandBody(specPath: string, flags: RunFlags): Promise<void> {
  const { text, block } = loadSpec(specPath, flags.entry);
  if (flags.backend !== 'reference') checkDtype(flags.backend, flags.dtype);
  const q = readTensor(flags.q, 'Q', 4);
  const k = readTensor(flags.k, 'K', 4);
  const v = readTensor(flags.v, 'V', 4);
  const [B, Hq, Nq, D] = q.shape;
  const [Bk, Hkv, Nk, Dk] = k.shape;
  if (v.shape.join() !== k.shape.join()) throw new UsageError(`V has shape [${v.shape.join(', ')}] but K has [${k.shape.join(', ')}]`);
  if (Bk !== B) throw new UsageError(`Q has batch ${B} but K has ${Bk}`);
  if (Dk !== D) throw new UsageError(`Q has head dim ${D} but K has ${Dk}`);
  if (Hq % Hkv !== 0) throw new UsageError(`Q has ${Hq} heads, not a multiple of K's ${Hkv}`);
  const lowered = lowerAndAnalyze(block);
  const tables = nameRecord<Int32Array | Float32Array>();
  for (const [name, path] of Object.entries(flags.input)) tables[name] = readTable(path, name);
  const call = completeCall(lowered, { B, Hq, Hkv, Nq, Nk, D, q: q.data, k: k.data, v: v.data, params: flags.param, tables });

  const gradOutputs = [flags.dq, flags.dk, flags.dv].filter((f) => f !== undefined);
  if (gradOutputs.length && !flags.gradO) throw new UsageError('--dq, --dk and --dv need --grad-o (the gradient of O)');
  if (flags.gradO && !gradOutputs.length) throw new UsageError('--grad-o: name at least one of --dq, --dk, --dv to write');
  const dO = flags.gradO ? readTensor(flags.gradO, 'dO', 4) : null;
  if (dO && dO.shape.join() !== q.shape.join()) throw new UsageError(`dO has shape [${dO.shape.join(', ')}] but Q has [${q.shape.join(', ')}]`);

  const started = performance.now();
  let o: Float32Array, lse: Float32Array, device: string;
  let grads: { dq: ArrayLike<number>; dk: ArrayLike<number>; dv: ArrayLike<number> } | null = null;
  if (flags.backend === 'reference') {
    const r = runReference(block, call);
    o = Float32Array.from(r.o); lse = Float32Array.from(r.lse); device = 'float64 reference (CPU)';
    if (dO) grads = referenceBackward(block, call, dO.data);
  } else {
    const backend = await openBackend(flags.backend);
    try {
      device = backend.describe();
      if (dO && !backend.backward) throw new UsageError(`--grad-o: the ${flags.backend} backend has no backward kernels yet (webgpu, cuda or reference)`);
      ({ o, lse } = await runKernel(backend, text, block, lowered, call, flags.dtype));
      if (dO) {
        const kernel = renderKernel(text, block, lowered, { ...backend.codegen(), dtype: flags.dtype, headDim: D, limits: backend.limits(), pass: 'backward' });
        grads = await backend.backward!(kernel, call, { o, lse, dO: dO.data });
      }
    } finally {
      backend.dispose();
    }
  }
  const ms = performance.now() - started;
  writeFileSync(flags.out, writeNpy(o, [B, Hq, Nq, D]));
  if (flags.lse) writeFileSync(flags.lse, writeNpy(lse, [B, Hq, Nq]));
  if (grads) {
    if (flags.dq) writeFileSync(flags.dq, writeNpy(Float32Array.from(grads.dq), [B, Hq, Nq, D]));
    if (flags.dk) writeFileSync(flags.dk, writeNpy(Float32Array.from(grads.dk), [B, Hkv, Nk, D]));
    if (flags.dv) writeFileSync(flags.dv, writeNpy(Float32Array.from(grads.dv), [B, Hkv, Nk, D]));
  }
  const summary = { spec: block.name, backend: flags.backend, device, dtype: flags.dtype, shape: { B, Hq, Hkv, Nq, Nk, D }, ms: Math.round(ms), out: flags.out, lse: flags.lse ?? null };
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(`${block.name}: ${flags.backend} on ${device}, [${B}, ${Hq}, ${Nq}, ${D}] x ${Nk} keys, ${flags.dtype} -> ${flags.out} (${summary.ms} ms)\n`);
}
