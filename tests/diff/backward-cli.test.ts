// `attnc compile --backward` and `attnc check --backward` from the command line: the files, the one-line refusals,
// and a check on the WebGPU adapter (skipped, and saying so, without one).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/runtime/webgpu-node.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const attnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-cli-'));
const adapter = await nodeGpu().requestAdapter().catch(() => null);
if (!adapter) console.warn('tests/diff/backward-cli.test.ts: the check on WebGPU is skipped: no adapter');

describe('attnc compile --backward', () => {
  it('writes <spec>.<dtype>.d<D>.bwd.wgsl and its manifest, whose ABI lists the two stages', () => {
    const r = attnc('compile', 'examples/document.attn', '--backward', '--dtype', 'f16', '-o', dir);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout.trim()).toBe(`wrote ${join(dir, 'document.f16.d64.bwd.wgsl')} and document.f16.d64.bwd.manifest.json`);
    const m = JSON.parse(readFileSync(join(dir, 'document.f16.d64.bwd.manifest.json'), 'utf8'));
    expect(m).toMatchObject({ target: 'wgsl', pass: 'backward', spec: 'document', dtype: 'f16', entryPoint: 'attend_bwd_dq' });
    expect(m.abi.stages.map((s: { entryPoint: string }) => s.entryPoint)).toEqual(['attend_bwd_dq', 'attend_bwd_dkdv']);
    // Each stage binds what it uses: 8 storage buffers (the WebGPU default per stage) and one per table.
    for (const s of m.abi.stages) expect(s.bindings.filter((b: number) => b !== 0)).toHaveLength(9);
    expect(m.abi.stages[0].bindings).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 11]);
    expect(m.abi.stages[1].bindings).toEqual([0, 1, 2, 3, 5, 6, 7, 9, 10, 11]);
    expect(readFileSync(join(dir, 'document.f16.d64.bwd.wgsl'), 'utf8')).toContain('fn attend_bwd_dkdv(');
  }, 60_000);

  it('refuses other targets in one line with exit 2', () => {
    for (const target of ['cuda', 'ts', 'flex']) {
      const r = attnc('compile', 'examples/causal.attn', '--backward', '--target', target);
      expect([r.status, r.stderr.trim()]).toEqual([2, 'attnc: --backward is for --target wgsl (the only backward kernels so far)']);
    }
  }, 60_000);
});

describe('attnc check --backward', () => {
  it.skipIf(!adapter)('checks dQ, dK, dV on WebGPU against the float64 backward reference', () => {
    const r = attnc('check', 'examples/softcap.attn', '--backward', '--shape', '1,4,2,40,24', '--dtype', 'f32,f16');
    expect(r.stderr).not.toMatch(/^attnc:/m); // Dawn's own warnings on lavapipe may be there
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ {2}ok {3}webgpu f32 .* dQ \d\.\d\de[-+]\d+ {2}dK .* dV /m);
    expect(r.stdout).toMatch(/^ {2}ok {3}webgpu f16 /m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('2 passed, 0 failed');
  }, 120_000);

  it('says in one line that the CUDA backend has no backward kernels', () => {
    const r = attnc('check', 'examples/causal.attn', '--backward', '--backend', 'cuda');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);
});
