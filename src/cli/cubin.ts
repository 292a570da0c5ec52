// `compile --target cuda --cubin ARCH`: builds the .cu ahead of time with
// nvcc, found the way CUDA's own tools are (CUDA_HOME / CUDA_PATH, then
// /usr/local/cuda, then PATH), for use outside Node (cuModuleLoad, cupy).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../compiler/compile.ts';

export function findNvcc(): string | null {
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter((r): r is string => Boolean(r));
  for (const root of roots) {
    const path = join(root, 'bin', 'nvcc');
    if (existsSync(path)) return path;
  }
  try {
    return execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** Compiles `cuPath` to `cubinPath` for `arch` (e.g. sm_90a); returns ptxas's resource report. */
export function buildCubin(cuPath: string, cubinPath: string, arch: string): string {
  if (!/^sm_\d+a?$/.test(arch)) throw new UsageError(`--cubin takes an architecture such as sm_80 or sm_90a, got '${arch}'`);
  const nvcc = findNvcc();
  if (!nvcc) throw new UsageError('--cubin needs nvcc (set CUDA_HOME, or put nvcc on the PATH)');
  try {
    const out = execFileSync(nvcc, ['-cubin', `-arch=${arch}`, '-Xptxas', '-v', '-o', cubinPath, cuPath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out;
  } catch (e) {
    const err = e as { stderr?: string };
    throw new Error(`internal error: nvcc could not build ${cuPath} for ${arch}:\n${err.stderr ?? String(e)}`);
  }
}
