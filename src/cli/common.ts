// What every command shares: reading files with one-line errors, printing
// diagnostics, choosing a backend, and mapping failures to exit codes.
//   0 ok · 1 the spec has errors or a check failed · 2 bad arguments, files,
//   or no such device · 3 the device failed while running
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { formatDiagnostics } from '../compiler/diagnostics/format.ts';
import type { Diagnostic } from '../compiler/diagnostics/diagnostic.ts';
import { frontEnd, UsageError } from '../compiler/compile.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import { DeviceError, NoDeviceError, type Backend } from '../runtime/device.ts';

export class ExitError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export function printDiagnostics(ds: Diagnostic[], path: string, text: string): void {
  process.stderr.write(formatDiagnostics(ds, { path, text }, { color: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR }));
}

/** Parse + check a spec file; diagnostics end the command with exit 1. */
export function loadSpec(path: string, entry?: string) {
  const text = readText(path, 'spec');
  const fe = frontEnd(path, text, entry);
  if (!fe.ok) {
    printDiagnostics(fe.diagnostics, path, text);
    throw new ExitError(1, '');
  }
  return { text, file: fe.file, block: fe.block };
}

export function parseIntArg(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return Number(v);
  };
}

export function parseChoice<T extends string>(choices: readonly T[]) {
  return (v: string): T => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return v as T;
  };
}

export const DTYPES = ['f32', 'f16', 'bf16'] as const;
export const BACKENDS = ['webgpu', 'cuda'] as const;
export type BackendName = (typeof BACKENDS)[number];
/**
 * Where a kernel can run: the backends, `ts` (the `--target ts` module of the WGSL kernel, on WebGPU) and `torch`
 * (the `--target torch` module of the CUDA kernel, from PyTorch).
 */
export const RUNNERS = [...BACKENDS, 'ts', 'torch', 'cuda-emu'] as const;
export type RunnerName = (typeof RUNNERS)[number];

/** `--param NAME=VALUE`, repeatable. */
export function collectParam(v: string, acc: Record<string, number>): Record<string, number> {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(v);
  if (!m || !Number.isFinite(Number(m[2]))) throw new InvalidArgumentError(`expected NAME=NUMBER, got '${v}'`);
  return { ...acc, [m[1]]: Number(m[2]) };
}

/** `--input NAME=FILE.npy`, repeatable. */
export function collectInput(v: string, acc: Record<string, string>): Record<string, string> {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected NAME=FILE.npy, got '${v}'`);
  return { ...acc, [m[1]]: m[2] };
}

/** Opens a backend by name; the CUDA runtime is loaded only when asked for. */
export async function openBackend(name: RunnerName): Promise<Backend> {
  if (name === 'webgpu') return (await import('../runtime/webgpu.ts')).openWebGpu();
  if (name === 'ts') return (await import('../runtime/ts-module-backend.ts')).openTsModuleBackend();
  if (name === 'torch') return (await import('../runtime/torch-module-backend.ts')).openTorchModuleBackend();
  if (name === 'cuda-emu') return (await import('../runtime/cuda-emu.ts')).openCudaEmu();
  return (await import('../runtime/cuda.ts')).openCuda();
}

export function checkDtype(backend: RunnerName, dtype: StorageDType): void {
  if (backend !== 'cuda' && backend !== 'cuda-emu' && backend !== 'torch' && dtype === 'bf16') throw new UsageError('--dtype bf16 needs --backend cuda, cuda-emu or torch (WebGPU kernels take f32 or f16)');
}

/** Runs a command body, turning every expected failure into one line and an exit code. */
export async function runCommand(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (e) {
    process.exitCode = exitCodeOf(e);
    const msg = e instanceof Error ? e.message : String(e);
    if (msg) process.stderr.write(`attnc: ${msg}\n`);
    if (process.env.ATTNC_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
  }
}

function exitCodeOf(e: unknown): number {
  if (e instanceof ExitError) return e.exitCode;
  if (e instanceof UsageError || e instanceof NoDeviceError) return 2;
  if (e instanceof Error && (e.name === 'NpyError' || e.name === 'UsageError')) return 2;
  if (e instanceof DeviceError) return 3;
  return 70; // an internal error: a bug in attnc
}
