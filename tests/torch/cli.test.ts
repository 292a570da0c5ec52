// `attnc compile --target torch`: writes <spec>_<dtype>_d<D>.py (a module name Python can import), prints it
// without -o, says what it wrote as JSON with --json, and refuses a head dim the CUDA kernels cannot take in one line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const attnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'compile', ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'attnc-torch-cli-'));

describe('attnc compile --target torch', () => {
  it('writes <spec>_<dtype>_d<D>.py', () => {
    const r = attnc('examples/alibi.attn', '--target', 'torch', '--dtype', 'bf16', '--head-dim', '128', '-o', dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`wrote ${join(dir, 'alibi_bf16_d128.py')}`);
    const text = readFileSync(join(dir, 'alibi_bf16_d128.py'), 'utf8');
    expect(text).toMatch(/^DTYPE = torch\.bfloat16$/m);
    expect(text).toMatch(/^HEAD_DIM = 128$/m);
    expect(text).toContain('def attention(q, k, v, params=None, tables=None):');
  }, 60_000);

  it('prints the module without -o; --json names the file and its hash', () => {
    const r = attnc('examples/causal.attn', '--target', 'torch', '--dtype', 'f16');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^# attnc .*: attention 'causal' as a fused CUDA kernel for PyTorch/);
    const j = attnc('examples/causal.attn', '--target', 'torch', '--dtype', 'f16', '--json', '-o', dir);
    expect(j.status).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ spec: 'causal', target: 'torch', path: join(dir, 'causal_f16_d64.py') });
    // the hash names the artifact: another dtype is another module
    const k = attnc('examples/causal.attn', '--target', 'torch', '--dtype', 'bf16', '--json', '-o', dir);
    expect(JSON.parse(k.stdout).hash).not.toBe(JSON.parse(j.stdout).hash);
  }, 60_000);

  it('refuses a head dim the kernels cannot take in one line with exit 2', () => {
    const r = attnc('examples/causal.attn', '--target', 'torch', '--head-dim', '100');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['attnc: cuda f32: head_dim 100 must be a multiple of 16 from 16 to 256']);
  }, 30_000);

  it('attnc check --backend torch says in one line why it cannot start (exit 2)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'check', 'examples/causal.attn', '--backend', 'torch', '--dtype', 'bf16'],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ATTNC_PYTHON: '/nonexistent/python3' } });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['attnc: no Python for the torch backend: /nonexistent/python3: spawn /nonexistent/python3 ENOENT (ATTNC_PYTHON picks another)']);
  }, 30_000);
});
