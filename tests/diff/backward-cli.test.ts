// `attnc compile --backward` and `attnc check --backward` from the command line: the files, the one-line refusals,
// and a check on the WebGPU adapter (skipped, and saying so, without one).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/runtime/webgpu-node.ts';
import { readNpy, toFloat32, writeNpy } from '../../src/runtime/npy.ts';
import { mulberry32, normalSource } from '../../src/runtime/random.ts';
import { gradientError, TOLERANCE } from '../../src/runtime/compare.ts';
import { writeFileSync } from 'node:fs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const attnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-cli-'));
const adapter = await nodeGpu().requestAdapter().catch(() => null);
if (!adapter) console.warn('tests/diff/backward-cli.test.ts: the check on WebGPU is skipped: no adapter');

describe('attnc compile --backward', () => {
  it('--target ts writes the backward module, its JavaScript and declarations', () => {
    const r = attnc('compile', 'examples/alibi.attn', '--backward', '--target', 'ts', '--head-dim', '32', '-o', dir);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout.trim()).toBe(`wrote ${join(dir, 'alibi.f32.d32.bwd.ts')}, alibi.f32.d32.bwd.js and alibi.f32.d32.bwd.d.ts`);
    expect(readFileSync(join(dir, 'alibi.f32.d32.bwd.d.ts'), 'utf8')).toContain('export declare class AlibiAttentionBackward {');
    expect(readFileSync(join(dir, 'alibi.f32.d32.bwd.ts'), 'utf8')).toContain('//   npx attnc compile alibi.attn --target ts --dtype f32 --head-dim 32 --backward\n');
  }, 60_000);

  it('writes <spec>.<dtype>.d<D>.bwd.wgsl and its manifest, whose ABI lists the two stages', () => {
    const r = attnc('compile', 'examples/document.attn', '--backward', '--dtype', 'f16', '-o', dir);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout.trim()).toBe(`wrote ${join(dir, 'document.f16.d64.bwd.wgsl')} and document.f16.d64.bwd.manifest.json`);
    const m = JSON.parse(readFileSync(join(dir, 'document.f16.d64.bwd.manifest.json'), 'utf8'));
    expect(m).toMatchObject({ target: 'wgsl', pass: 'backward', spec: 'document', dtype: 'f16', entryPoint: 'attend_bwd_dq' });
    expect(m.abi.stages.map((s: { entryPoint: string }) => s.entryPoint)).toEqual(['attend_bwd_dq', 'attend_bwd_dkdv']);
    // Each stage binds what it uses: 7 storage buffers and one per table, within WebGPU's default of 8 per stage.
    for (const s of m.abi.stages) expect(s.bindings.filter((b: number) => b !== 0)).toHaveLength(8);
    expect(m.abi.stages[0].bindings).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 10]);
    expect(m.abi.stages[1].bindings).toEqual([0, 1, 2, 3, 5, 6, 8, 9, 10]);
    expect(readFileSync(join(dir, 'document.f16.d64.bwd.wgsl'), 'utf8')).toContain('fn attend_bwd_dkdv(');
  }, 60_000);

  it('refuses other targets in one line with exit 2', () => {
    for (const target of ['flex', 'torch']) {
      const r = attnc('compile', 'examples/causal.attn', '--backward', '--target', target);
      expect([r.status, r.stderr.trim()]).toEqual([2, 'attnc: --backward is for --target wgsl, ts or cuda (the torch and flex modules carry their gradients already)']);
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

  it('compile --backward --target cuda writes the launches and their ABI (sm_90a: the single pass in blocks of two warpgroups); f32 is refused in one line', () => {
    const out = join(dir, 'cuda-bwd');
    const r = attnc('compile', 'examples/scale_invariant.attn', '--target', 'cuda', '--backward', '--dtype', 'bf16', '--head-dim', '64', '-o', out);
    expect(r.status).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'scale_invariant.bf16.d64.bwd.manifest.json'), 'utf8'));
    expect([m.pass, m.abi.stages.map((s: { entryPoint: string }) => s.entryPoint)]).toEqual(['backward', ['attnc_scale_invariant_bf16_d64_bwd_prep', 'attnc_scale_invariant_bf16_d64_bwd_dkdv', 'attnc_scale_invariant_bf16_d64_bwd_dq_store']]);
    expect(m.abi.args.map((a: { name: string }) => a.name)).toEqual(['Q', 'K', 'V', 'O', 'LSE', 'dO', 'dQ', 'dK', 'dV', 'Delta', 'dQacc', 'B', 'Hq', 'Hkv', 'Nq', 'Nk', 'tau']);
    expect(m.abi.scratch.map((x: { name: string }) => x.name)).toEqual(['Delta', 'dQacc']);
    const r128 = attnc('compile', 'examples/scale_invariant.attn', '--target', 'cuda', '--backward', '--dtype', 'bf16', '--head-dim', '128', '-o', out);
    expect(r128.status).toBe(0);
    const m128 = JSON.parse(readFileSync(join(out, 'scale_invariant.bf16.d128.bwd.manifest.json'), 'utf8'));
    expect(m128.abi.stages.map((s: { entryPoint: string; block: number[] }) => [s.entryPoint, s.block[0]])).toEqual([['attnc_scale_invariant_bf16_d128_bwd_prep', 128], ['attnc_scale_invariant_bf16_d128_bwd_dkdv', 256], ['attnc_scale_invariant_bf16_d128_bwd_dq_store', 128]]);
    expect(m128.abi.tuning).toBe('tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,wgmma-dq,bulk-dq');
    expect(m.abi.tuning).toBe('tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,bulk-dq');
    const f32 = attnc('compile', 'examples/causal.attn', '--target', 'cuda', '--backward', '--dtype', 'f32');
    expect([f32.status, f32.stderr.trim()]).toEqual([2, 'attnc: cuda backward kernels take f16 or bf16 storage (tensor cores); f32 gradients: --backend webgpu']);
  }, 60_000);
});

describe('attnc run --grad-o', () => {
  const shape = { B: 1, Hq: 2, Hkv: 1, Nq: 9, Nk: 12, D: 32 };
  const tensor = (name: string, dims: number[], seed: number) => {
    const normal = normalSource(mulberry32(seed));
    const path = join(dir, `${name}.npy`);
    writeFileSync(path, writeNpy(Float32Array.from({ length: dims.reduce((a, b) => a * b) }, normal), dims));
    return path;
  };
  const qd = [shape.B, shape.Hq, shape.Nq, shape.D], kd = [shape.B, shape.Hkv, shape.Nk, shape.D];
  const io = ['--q', tensor('q', qd, 1), '--k', tensor('k', kd, 2), '--v', tensor('v', kd, 3), '--grad-o', tensor('do', qd, 4)];
  const read = (f: string) => toFloat32(readNpy(readFileSync(f), f), f);
  const run = (backend: string) => attnc('run', 'examples/scale_invariant.attn', ...io, '--backend', backend, '-o', join(dir, `o-${backend}.npy`),
    '--dq', join(dir, `dq-${backend}.npy`), '--dk', join(dir, `dk-${backend}.npy`), '--dv', join(dir, `dv-${backend}.npy`));

  it('writes the reference gradients; refuses gradient files without --grad-o, and --grad-o without one', () => {
    const r = run('reference');
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(readNpy(readFileSync(join(dir, 'dk-reference.npy')), 'dk').shape).toEqual(kd);
    const none = attnc('run', 'examples/causal.attn', ...io.slice(0, 6), '-o', join(dir, 'x.npy'), '--dq', join(dir, 'y.npy'));
    expect([none.status, none.stderr.trim()]).toEqual([2, 'attnc: --dq, --dk and --dv need --grad-o (the gradient of O)']);
    const nothing = attnc('run', 'examples/causal.attn', ...io, '-o', join(dir, 'x.npy'));
    expect([nothing.status, nothing.stderr.trim()]).toEqual([2, 'attnc: --grad-o: name at least one of --dq, --dk, --dv to write']);
  }, 60_000);

  it.skipIf(!adapter)('on WebGPU the gradients it writes match the reference run\'s', () => {
    expect(run('reference').status).toBe(0);
    const r = run('webgpu');
    expect(r.status).toBe(0);
    for (const g of ['dq', 'dk', 'dv']) {
      const e = gradientError(read(join(dir, `${g}-webgpu.npy`)), read(join(dir, `${g}-reference.npy`)));
      expect(e.nanCount).toBe(0);
      expect(e.err, g).toBeLessThanOrEqual(TOLERANCE.f32);
    }
  }, 120_000);
});
