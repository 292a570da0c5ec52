// `attnc check SPEC`: random inputs through a backend against the float64
// reference; prints the max abs error per case against the dtype's
// tolerance and exits 1 if any case fails.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { lowerAndAnalyze, UsageError } from '../compiler/compile.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import { checkBackwardCases, checkCases, defaultCases, type BackwardCheckResult, type CheckCase, type CheckResult } from '../runtime/check.ts';
import { NoDeviceError, type Backend } from '../runtime/device.ts';
import { BACKENDS, collectParam, DTYPES, ExitError, loadSpec, openBackend, parseChoice, RUNNERS, runCommand, type RunnerName } from './common.ts';

interface CheckFlags {
  backend: RunnerName | 'all';
  shape?: CheckCase[];
  dtype: StorageDType[];
  param: Record<string, number>;
  entry?: string;
  seed: number;
  json?: boolean;
  backward?: boolean;
}

function parseShape(v: string, acc: CheckCase[] | undefined): CheckCase[] {
  const parts = v.split(',').map(Number);
  const ok = (parts.length === 4 || parts.length === 5 || parts.length === 6) && parts.every((x) => Number.isInteger(x) && x > 0);
  if (!ok) throw new InvalidArgumentError(`expected B,H,N,D or B,Hq,Hkv,N,D or B,Hq,Hkv,Nq,Nk,D with positive integers, got '${v}'`);
  const [B, a, b, c, d, e] = parts;
  const shape = parts.length === 4 ? { B, Hq: a, Hkv: a, Nq: b, Nk: b, D: c }
    : parts.length === 5 ? { B, Hq: a, Hkv: b, Nq: c, Nk: c, D: d! }
    : { B, Hq: a, Hkv: b, Nq: c, Nk: d!, D: e! };
  return [...(acc ?? []), shape];
}

function parseDtypes(v: string): StorageDType[] {
  if (v === 'all') return [...DTYPES];
  return v.split(',').map((d) => parseChoice(DTYPES)(d));
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('run random inputs on a device and compare with the float64 reference')
    .argument('<spec>', 'the .attn file')
    .option('--backend <name>', 'webgpu, cuda, ts (the --target ts module, on WebGPU), torch (the --target torch module, from PyTorch) or all (webgpu and cuda, those present)', parseChoice([...RUNNERS, 'all'] as const), 'webgpu')
    .option('--shape <B,H,N,D>', 'a shape to check (repeatable; also B,Hq,Hkv,N,D and B,Hq,Hkv,Nq,Nk,D); default: several lengths, GQA and decode', parseShape)
    .option('--dtype <list>', 'storage dtypes, comma separated, or all', parseDtypes, ['f32'] as StorageDType[])
    .option('--param <name=value>', 'set a runtime param (repeatable)', collectParam, {})
    .option('--entry <name>', 'the attention block to check when the file has several')
    .option('--seed <n>', 'random seed', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('--seed must be a non-negative integer');
      return Number(v);
    }, 1)
    .option('--backward', 'check the backward kernels (dQ, dK, dV) against the float64 backward reference instead (WebGPU; CUDA and the torch module for f16/bf16)')
    .option('--json', 'print the results as JSON')
    .action((spec: string, flags: CheckFlags) => runCommand(() => checkCommand(spec, flags)));
}

async function openAll(which: CheckFlags['backend']): Promise<Backend[]> {
  if (which !== 'all') return [await openBackend(which)];
  const found: Backend[] = [];
  for (const name of BACKENDS) {
    try {
      found.push(await openBackend(name));
    } catch (e) {
      if (!(e instanceof NoDeviceError)) throw e;
      process.stderr.write(`attnc: skipping ${name}: ${e.message}\n`);
    }
  }
  if (found.length === 0) throw new NoDeviceError('no backend is available on this machine');
  return found;
}

async function checkCommand(specPath: string, flags: CheckFlags): Promise<void> {
  const { text, block } = loadSpec(specPath, flags.entry);
  const lowered = lowerAndAnalyze(block);
  const backends = await openAll(flags.backend);
  const results: Array<CheckResult | BackwardCheckResult> = [];
  try {
    for (const backend of backends) {
      const dtypes = flags.dtype.filter((d) => backend.dtypes().includes(d));
      if (dtypes.length === 0) throw new UsageError(`${backend.name} runs ${backend.dtypes().join(', ')}, not ${flags.dtype.join(', ')}`);
      if (!flags.json) process.stdout.write(`${block.name} on ${backend.name}: ${backend.describe()}\n`);
      const cases = flags.shape ?? defaultCases();
      if (flags.backward) {
        for await (const r of checkBackwardCases(backend, text, block, lowered, cases, dtypes, flags.param, flags.seed)) {
          results.push(r);
          if (!flags.json) process.stdout.write(formatBackwardResult(r) + '\n');
        }
      } else {
        for await (const r of checkCases(backend, text, block, lowered, cases, dtypes, flags.param, flags.seed)) {
          results.push(r);
          if (!flags.json) process.stdout.write(formatResult(r) + '\n');
        }
      }
    }
  } finally {
    backends.forEach((b) => b.dispose());
  }
  const failed = results.filter((r) => !r.pass).length;
  const skipped = results.filter((r) => 'ambiguous' in r && r.ambiguous > 0).length;
  const passed = results.length - failed - skipped;
  if (flags.json) process.stdout.write(JSON.stringify({ spec: block.name, results, passed, failed, ...(skipped ? { skipped } : {}) }, null, 2) + '\n');
  else process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  if (failed) throw new ExitError(1, '');
}

function shapeText(s: CheckCase): string {
  return `B=${s.B} Hq=${s.Hq} Hkv=${s.Hkv} Nq=${String(s.Nq).padStart(5)} Nk=${String(s.Nk).padStart(5)} D=${String(s.D).padStart(3)}`;
}

function formatBackwardResult(r: BackwardCheckResult): string {
  const err = `dQ ${r.errDq.toExponential(2)}  dK ${r.errDk.toExponential(2)}  dV ${r.errDv.toExponential(2)}  tol ${r.tolerance.toExponential(0)} (of the largest gradient)`;
  if (r.ambiguous) return `  skip ${r.backend} ${r.dtype.padEnd(4)} ${shapeText(r.shape)}  ${r.ambiguous} weighted pairs sit at a kink or jump of the logit in the score: the derivative there is a convention`;
  return `  ${r.pass ? 'ok  ' : 'FAIL'} ${r.backend} ${r.dtype.padEnd(4)} ${shapeText(r.shape)}  ${err}${r.nanCount ? `  ${r.nanCount} non-finite` : ''}`;
}

function formatResult(r: CheckResult): string {
  const shape = shapeText(r.shape);
  const err = `O err ${r.maxAbsErrO.toExponential(2)}  LSE err ${r.maxAbsErrLse.toExponential(2)}  tol ${r.tolerance.toExponential(0)}`;
  const rows = r.sampledRows ? `  (${r.sampledRows} rows sampled)` : '';
  return `  ${r.pass ? 'ok  ' : 'FAIL'} ${r.backend} ${r.dtype.padEnd(4)} ${shape}  ${err}${rows}`;
}
