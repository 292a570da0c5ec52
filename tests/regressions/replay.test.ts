// Replays every saved failing case (NAME.attn + NAME.json, written by the
// differential fuzzer, src/fuzz/diff-loop.ts) on every backend present: the
// WebGPU adapter and, on a GPU machine, CUDA (the case's own dtype there;
// WebGPU runs it too).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWebGpu } from '../../src/runtime/webgpu.ts';
import type { Backend } from '../../src/runtime/device.ts';
import { compileDiff, runCase, type DiffCase } from '../../src/fuzz/diff-run.ts';
import type { DiffSpec, ParamDecl, TableDecl } from '../../src/fuzz/diff-gen.ts';
import { frontEnd, lowerAndAnalyze } from '../../src/compiler/compile.ts';

const dir = import.meta.dirname;
const cases = readdirSync(dir).filter((f) => f.endsWith('.attn') && existsSync(join(dir, f.replace(/\.attn$/, '.json')))).sort();

const backends: Backend[] = [];
try { backends.push(await openWebGpu()); } catch { /* skipped below */ }
try { backends.push(await (await import('../../src/runtime/cuda.ts')).openCuda()); } catch { /* no CUDA here */ }
afterAll(() => backends.forEach((b) => b.dispose()));

/** Declarations of a saved spec, from its own front end (params and tables with the generator's bounds). */
function specOf(text: string): DiffSpec {
  const fe = frontEnd('r.attn', text);
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join('; '));
  const { program } = lowerAndAnalyze(fe.block);
  const params: ParamDecl[] = program.params.map((p) => ({ name: p.name, type: p.type, lo: 0, hi: 0, def: p.default }));
  const tables: TableDecl[] = program.inputs.map((t) => ({ name: t.name, elem: t.elem, axis: t.axis, lo: 0, hi: 0 }));
  return { text, params, tables, scoreBound: 7 };
}

(backends.length && cases.length ? describe : describe.skip)('saved regressions', () => {
  for (const backend of backends) for (const file of cases) {
    it(`${file} (${backend.name})`, async () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const dc = JSON.parse(readFileSync(join(dir, file.replace(/\.attn$/, '.json')), 'utf8')) as DiffCase;
      // A dtype the backend lacks (bf16 on WebGPU) is replayed in f16, the nearest one it has.
      if (!backend.dtypes().includes(dc.dtype)) dc.dtype = 'f16';
      const out = await runCase(backend, compileDiff(specOf(text)), dc);
      expect(out.cmp.nanCount).toBe(0);
      expect(out.cmp.maxAbsErrO).toBeLessThanOrEqual(out.tolerance);
      expect(out.cmp.maxAbsErrLse).toBeLessThanOrEqual(out.tolerance);
    }, 120_000);
  }
});
