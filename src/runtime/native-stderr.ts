// Native libraries (Dawn) write some warnings straight to file descriptor 2,
// where Node cannot see them. On lavapipe, Dawn prints two lines on every
// adapter request ("maxDynamic...BuffersPerPipelineLayout artificially reduced
// ... to fit dynamic offset allocation limit"): harmless, and noise before
// every result. `withNativeStderrFiltered` points fd 2 at a temporary file for
// the length of one call (dup/dup2 from libc through koffi, already a
// dependency), then writes back every line except those `drop` matches, so
// nothing else is lost. Where libc cannot be loaded it just runs the call.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';

type FdCalls = { dup: (fd: number) => number; dup2: (from: number, to: number) => number };

let fdCalls: FdCalls | null | undefined;

function loadFdCalls(): FdCalls | null {
  if (fdCalls !== undefined) return fdCalls;
  fdCalls = null;
  if (process.platform !== 'linux' && process.platform !== 'darwin') return null;
  for (const name of process.platform === 'linux' ? ['libc.so.6', 'libc.so'] : ['libc.dylib', '/usr/lib/libSystem.B.dylib']) {
    try {
      const libc = koffi.load(name);
      fdCalls = { dup: libc.func('int dup(int)') as FdCalls['dup'], dup2: libc.func('int dup2(int, int)') as FdCalls['dup2'] };
      break;
    } catch {
      // not this name
    }
  }
  return fdCalls;
}

export async function withNativeStderrFiltered<T>(drop: RegExp, call: () => Promise<T>): Promise<T> {
  const fd = process.env.ATTNC_DEBUG === '1' ? null : loadFdCalls();
  if (!fd) return call();
  const dir = mkdtempSync(join(tmpdir(), 'attnc-stderr-'));
  const path = join(dir, 'stderr.txt');
  const file = openSync(path, 'w+');
  const saved = fd.dup(2);
  if (saved < 0 || fd.dup2(file, 2) < 0) {
    if (saved >= 0) closeSync(saved);
    closeSync(file);
    rmSync(dir, { recursive: true, force: true });
    return call();
  }
  try {
    return await call();
  } finally {
    fd.dup2(saved, 2);
    closeSync(saved);
    closeSync(file);
    const kept = readFileSync(path, 'utf8').split('\n').filter((line, i, all) => !drop.test(line) && !(i === all.length - 1 && line === ''));
    rmSync(dir, { recursive: true, force: true });
    if (kept.length) process.stderr.write(kept.join('\n') + '\n');
  }
}
