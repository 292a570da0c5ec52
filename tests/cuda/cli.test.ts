// `attnc compile --target cuda` picks the kernel family by --arch, a cubin for
// another GPU than the kernels were generated for is refused in one line, and
// a reader that closes the pipe early ends the output without a stack trace.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findNvcc } from '../../src/cli/cubin.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const attnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'compile', ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'attnc-cuda-cli-'));
const manifest = (D: number) => JSON.parse(readFileSync(join(dir, `causal.bf16.d${D}.manifest.json`), 'utf8'));

describe('attnc compile --target cuda', () => {
  it('sm_90a (the default) renders the wgmma kernel at D 64/128 (at D 64 with a producer warpgroup, persistent) and mma.sync at D 96; sm_80 renders mma.sync', () => {
    for (const D of [64, 96]) expect(attnc('examples/causal.attn', '--target', 'cuda', '--dtype', 'bf16', '--head-dim', String(D), '-o', dir).status).toBe(0);
    expect(manifest(64).abi).toMatchObject({ kernel: 'wgmma', arch: 'sm_90a', block: [384, 1, 1], persistent: true });
    expect(readFileSync(join(dir, 'causal.bf16.d64.cu'), 'utf8')).toContain('attnc_setmaxnreg_inc<224>');
    expect(manifest(96).abi).toMatchObject({ kernel: 'mma', arch: 'sm_90a' });
    expect(attnc('examples/causal.attn', '--target', 'cuda', '--dtype', 'bf16', '--arch', 'sm_80', '-o', dir).status).toBe(0);
    expect(manifest(64).abi).toMatchObject({ kernel: 'mma', arch: 'sm_80' });
  }, 60_000);

  it('explain --backend cuda says how the kernel is tiled and which softmax shortcuts it takes', () => {
    const explain = (spec: string, D: number, dtype = 'bf16') => spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'explain', `examples/${spec}.attn`, '--backend', 'cuda', '--dtype', dtype, '--head-dim', String(D)], { cwd: ROOT, encoding: 'utf8' });
    const plan = (spec: string, D: number, dtype = 'bf16') => explain(spec, D, dtype).stdout.split('\n')[1];
    expect(plan('causal', 128)).toMatch(/3 cp\.async stages .*softmax: scale folded into exp2 .*, lazy rescale/);
    expect(plan('causal', 64)).toMatch(/persistent \(Q double-buffered, items in snake order\); softmax: scale folded into exp2 \(row max over raw dot products\), warpgroups take turns at the tensor cores \(pingpong\)\.$/);
    expect(plan('alibi', 64)).toMatch(/softmax: row max and sum in two chains, P V waited for before the softmax, warpgroups take turns at the tensor cores \(pingpong\)\.$/);
    expect(plan('scale_invariant', 64)).not.toMatch(/pingpong/);  // it lost beside per-diagonal tables
    expect(plan('document', 128)).toMatch(/softmax: lazy rescale/);
    expect(plan('document', 128)).not.toMatch(/folded/);
    // scale_invariant: 96-key tiles leave room for 3 stages beside its diagonal tables; the row sums go to the tensor cores
    expect(plan('scale_invariant', 128)).toMatch(/BN=96 keys, .*3 cp\.async stages .*softmax overlapped with P V; .*row sums on the tensor cores/);
    // and in bf16 the zero reference, with P V waited for before the softmax, O rescaled only off it and its check on the
    // packed P (softcap too); in f16 (its window seldom holds) no zero reference
    expect(plan('scale_invariant', 128)).toMatch(/P V waited for before the softmax, O rescaled only where a reference moved, the zero reference checked on the packed P, zero reference where the row max is in \[-32, 32\]/);
    expect(plan('softcap', 64)).toMatch(/the zero reference checked on the packed P/);
    expect(plan('scale_invariant', 128, 'f16')).toMatch(/P V waited for before the softmax, per-diagonal values read into registers while S is computed\.$/);
    // ... whose values the producer carries from tile to tile (both on at D=128 only)
    expect(plan('scale_invariant', 128)).toMatch(/per-diagonal values carried in its registers from tile to tile/);
    expect(plan('scale_invariant', 64)).not.toMatch(/per-diagonal values/);
    // the variants of the source and the calls they serve, one line each
    expect(explain('causal', 64).stdout.split('\n')[2]).toMatch(/^  for calls with Nq >= 2048: attnc_causal_bf16_d64_long, BM=192 query rows x BN=96 keys, 512 threads/);
    expect(explain('document', 128).stdout.split('\n')[2]).toMatch(/^  for calls with Nk <= 4096: attnc_document_bf16_d128_short, BM=64 query rows x BN=64 keys/);
    expect(plan('causal', 128)).not.toMatch(/zero reference|waited/);
    // --json carries the same under `kernel`
    const json = spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'explain', 'examples/causal.attn', '--backend', 'cuda', '--dtype', 'bf16', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(JSON.parse(json.stdout).kernel).toMatchObject({ backend: 'cuda', family: 'wgmma', headDim: 64, arch: 'sm_90a', tile: { bm: 128, bn: 128, threads: 384 }, plan: plan('causal', 64).trim(),
      variants: [{ entryPoint: 'attnc_causal_bf16_d64_long', minNq: 2048, plan: expect.stringMatching(/^BM=192 query rows/) }] });
  }, 60_000);

  it('scale_invariant takes its row sums on the tensor cores unless --exact-lse (a different artifact hash); --exact-lse is CUDA only', () => {
    const source = () => readFileSync(join(dir, 'scale_invariant.bf16.d128.cu'), 'utf8');
    const hash = () => JSON.parse(readFileSync(join(dir, 'scale_invariant.bf16.d128.manifest.json'), 'utf8')).hash;
    expect(attnc('examples/scale_invariant.attn', '--target', 'cuda', '--dtype', 'bf16', '--head-dim', '128', '-o', dir).status).toBe(0);
    const fast = hash();
    expect(source()).toMatch(/attnc_wgmma_rs_ones\(&o\[0\]\[16\]\[0\]/);
    expect(source()).toMatch(/^\/\/ Tiles: .*row sums on the tensor cores/m);
    expect(attnc('examples/scale_invariant.attn', '--target', 'cuda', '--dtype', 'bf16', '--head-dim', '128', '--exact-lse', '-o', dir).status).toBe(0);
    expect(source()).not.toMatch(/attnc_wgmma_rs_ones|row sums on the tensor cores/);
    expect(source()).toMatch(/l_i\[i\] = l_i\[i\] \* alpha \+ rs;/);
    expect(hash()).not.toBe(fast);
    const wgsl = attnc('examples/scale_invariant.attn', '--exact-lse');
    expect([wgsl.status, wgsl.stderr.trim()]).toEqual([2, 'attnc: --exact-lse is for --target cuda or torch']);
  }, 60_000);

  it('refuses --cubin sm_80 for sm_90a kernels with one line and exit 2', () => {
    const r = attnc('examples/causal.attn', '--target', 'cuda', '--dtype', 'bf16', '-o', dir, '--cubin', 'sm_80');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--arch sm_80/);
  }, 30_000);

  it.skipIf(!findNvcc())('builds an sm_80 cubin with --arch sm_80', () => {
    const r = attnc('examples/causal.attn', '--target', 'cuda', '--dtype', 'bf16', '--arch', 'sm_80', '-o', dir, '--cubin', 'sm_80');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, 'causal.bf16.d64.sm_80.cubin')).length).toBeGreaterThan(1000);
  }, 120_000);

  it('ends quietly when the reader closes the pipe early (| head)', () => {
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" bin/attnc.js explain examples/scale_invariant.attn --len 65536 --json | head -c 10 >/dev/null`],
      { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 30_000);
});
