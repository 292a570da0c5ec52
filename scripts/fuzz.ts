// `npm run fuzz -- --seconds N [--seed S] [--kind front|diff] [--jobs J] [--max-len L] [--d 32,64,128]`
// Long fuzzing runs; prints counts (specs fuzzed, crashes, worst time per KB
// for the front end; programs, cases and mismatches per backend for diff) as
// JSON and as one `fuzz summary: ...` line per backend. `--jobs J` runs J
// worker processes on disjoint shares of the seed's stream until one shared
// deadline (src/fuzz/parallel.ts). Exit status 1 when anything failed (a
// mismatch, a crash, a worker that died or overran). See docs/RELIABILITY.md.
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { frontLoop, type FrontLoopStats } from '../src/fuzz/front-loop.ts';
import { diffLoop, type DiffLoopStats } from '../src/fuzz/diff-loop.ts';
import {
  diffSummaryLine, frontSummaryLine, mergeDiffStats, mergeFrontStats, runWorkers, workerProblems, workerShare, type WorkerMessage,
} from '../src/fuzz/parallel.ts';
import { openWebGpu } from '../src/runtime/webgpu.ts';
import type { Backend } from '../src/runtime/device.ts';

const opts = new Command()
  .option('--seconds <n>', 'how long to run', Number, 60)
  .option('--seed <n>', 'first seed', Number, 1)
  .option('--kind <kind>', 'front or diff', 'front')
  .option('--jobs <n>', 'worker processes (each its own share of the seed stream)', Number, 1)
  .option('--max-specs <n>', 'stop after this many specs in all (per backend for diff)', Number)
  .option('--grace <s>', 'with --jobs: kill a worker still running this long after the deadline', Number, 120)
  .option('--no-pathological', 'front: skip the pathological inputs (1 MB files, deep nesting)')
  .option('--backend <names>', 'diff: webgpu,cuda (those that open); ts: the --target ts module on WebGPU; torch: the --target torch module from PyTorch; cuda-emu: the CUDA kernels on the CPU emulator', 'webgpu,cuda')
  .option('--max-len <n>', 'diff: longest sequence', Number, 600)
  .option('--max-work <n>', 'diff: largest B*Hq*Nq*Nk per case', Number, 400_000)
  .option('--d <weights>', 'diff: weights of head dims 32,64,128', '6,3,1')
  .option('--save-dir <dir>', 'diff: where failing cases are written', 'tests/regressions')
  .option('--backward', 'diff: also run the backward kernels and compare dQ, dK, dV with the float64 backward reference')
  .option('--worker <k>', '(internal) run as worker k of --jobs', Number)
  .option('--deadline <ms>', '(internal) the shared deadline, ms since the epoch', Number)
  .parse(process.argv)
  .opts();

process.env.XDG_RUNTIME_DIR ??= '/tmp/xdg';
const log = (line: string) => console.log(line);
const jobs = Math.max(1, Math.floor(opts.jobs));
const worker: number | undefined = opts.worker;
const send = (m: WorkerMessage<DiffLoopStats | FrontLoopStats>) => new Promise<void>((done) => { process.send?.(m, () => done()) ?? done(); });

if (opts.kind !== 'front' && opts.kind !== 'diff') {
  console.error(`--kind must be front or diff, not ${opts.kind}`);
  process.exit(2);
}

async function openBackend(name: string): Promise<Backend> {
  if (name === 'cuda') return (await import('../src/runtime/cuda.ts')).openCuda();
  if (name === 'webgpu') return openWebGpu();
  if (name === 'ts') return (await import('../src/runtime/ts-module-backend.ts')).openTsModuleBackend();
  if (name === 'torch') return (await import('../src/runtime/torch-module-backend.ts')).openTorchModuleBackend();
  if (name === 'cuda-emu') return (await import('../src/runtime/cuda-emu.ts')).openCudaEmu();
  throw new Error(`unknown backend '${name}' (webgpu, cuda, ts, torch or cuda-emu)`);
}

const dWeights = String(opts.d).split(',').map(Number) as [number, number, number];
const failureNames = (s: DiffLoopStats) => s.failures.map((f) => f.file ?? f.spec.split('\n')[0]);

if (worker !== undefined) {
  // One worker of a --jobs run: its share of the stream until the shared deadline, counts over IPC.
  const seconds = Math.max(0, (opts.deadline - Date.now()) / 1000);
  const share = { offset: worker, stride: jobs, maxSpecs: workerShare(opts.maxSpecs, worker, jobs) };
  if (opts.kind === 'front') {
    const s = frontLoop({ seed: opts.seed, seconds, ...share, pathological: opts.pathological && worker === 0, log });
    await send({ t: 'result', stats: s });
  } else {
    let backend: Backend;
    try {
      backend = await openBackend(String(opts.backend));
    } catch (e) {
      await send({ t: 'unavailable', message: (e as Error).message.split('\n')[0] });
      process.exit(0);
    }
    const s = await diffLoop(backend, {
      seed: opts.seed, seconds, ...share, maxLen: opts.maxLen, maxWork: opts.maxWork, dWeights, saveDir: opts.saveDir, backward: !!opts.backward, log,
      onSpec: (spec, stats) => void send({ t: 'progress', stats, spec }),
    });
    backend.dispose();
    await send({ t: 'result', stats: s });
  }
  // The result is sent (the parent counts failures from it); Dawn may keep the event loop alive.
  process.exit(0);
} else if (jobs === 1) {
  // In process, as before --jobs existed.
  if (opts.kind === 'front') {
    const s = frontLoop({ seed: opts.seed, seconds: opts.seconds, maxSpecs: opts.maxSpecs, pathological: opts.pathological, log });
    console.log(JSON.stringify(s, null, 2));
    console.log(frontSummaryLine(s, 1, 0));
    process.exit(s.crashes > 0 || s.overBudget > 0 ? 1 : 0);
  }
  let failed = false;
  const totals: string[] = [];
  for (const name of String(opts.backend).split(',')) {
    let backend: Backend;
    try {
      backend = await openBackend(name);
    } catch (e) {
      console.log(`${name}: not available (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    console.log(`${name}: ${backend.describe()}`);
    const s = await diffLoop(backend, { seed: opts.seed, seconds: opts.seconds, maxSpecs: opts.maxSpecs, maxLen: opts.maxLen, maxWork: opts.maxWork, dWeights, saveDir: opts.saveDir, backward: !!opts.backward, log });
    backend.dispose();
    console.log(JSON.stringify({ ...s, failures: failureNames(s) }, null, 2));
    totals.push(diffSummaryLine(name, s, 1, 0));
    failed ||= s.mismatches > 0;
  }
  for (const line of totals) console.log(line);
  process.exit(failed ? 1 : 0);
} else {
  // The parent of a --jobs run: one set of workers per backend (backends one after the other, each for --seconds).
  const script = fileURLToPath(import.meta.url);
  const passOn = (k: number, deadline: number, extra: string[]) => [
    '--kind', opts.kind, '--seed', String(opts.seed), '--jobs', String(jobs), '--worker', String(k), '--deadline', String(deadline),
    ...(opts.maxSpecs !== undefined ? ['--max-specs', String(opts.maxSpecs)] : []),
    ...(opts.pathological ? [] : ['--no-pathological']), ...extra,
  ];
  if (opts.kind === 'front') {
    const t0 = performance.now();
    const deadline = Date.now() + opts.seconds * 1000;
    const reports = await runWorkers<FrontLoopStats>({ script, jobs, deadlineMs: deadline, graceSeconds: opts.grace, log, args: (k) => passOn(k, deadline, []) });
    const s = mergeFrontStats(reports.flatMap((r) => (r.last ? [r.last] : [])));
    s.seconds = (performance.now() - t0) / 1000;
    const problems = workerProblems(reports);
    console.log(JSON.stringify({ ...s, jobs, workerProblems: problems }, null, 2));
    console.log(frontSummaryLine(s, jobs, problems.length));
    process.exit(s.crashes > 0 || s.overBudget > 0 || problems.length > 0 ? 1 : 0);
  }
  let failed = false;
  const totals: string[] = [];
  for (const name of String(opts.backend).split(',')) {
    const t0 = performance.now();
    const deadline = Date.now() + opts.seconds * 1000;
    const reports = await runWorkers<DiffLoopStats>({
      script, jobs, deadlineMs: deadline, graceSeconds: opts.grace, log,
      args: (k) => passOn(k, deadline, ['--backend', name, '--max-len', String(opts.maxLen), '--max-work', String(opts.maxWork), '--d', String(opts.d), '--save-dir', opts.saveDir, ...(opts.backward ? ['--backward'] : [])]),
    });
    const unavailable = reports.find((r) => r.unavailable !== null);
    if (unavailable && reports.every((r) => r.last === null)) {
      console.log(`${name}: not available (${unavailable.unavailable})`);
      continue;
    }
    const s = mergeDiffStats(reports.flatMap((r) => (r.last ? [r.last] : [])));
    s.seconds = (performance.now() - t0) / 1000;
    const problems = workerProblems(reports);
    console.log(JSON.stringify({ ...s, failures: failureNames(s), jobs, workerProblems: problems }, null, 2));
    totals.push(diffSummaryLine(name, s, jobs, problems.length));
    failed ||= s.mismatches > 0 || problems.length > 0 || reports.some((r) => r.unavailable !== null);
  }
  for (const line of totals) console.log(line);
  process.exit(failed ? 1 : 0);
}
