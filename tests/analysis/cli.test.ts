// `attnc analyze` end to end: the verdicts of the issue, the JSON shape, the
// SVG, and the exit codes of bad arguments.
import { describe, expect, it, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeInProcess, ROOT } from './helpers.ts';

/** The real CLI, for exit codes (each spawn pays several seconds of start-up, so only a few). */
const spawnAttnc = (...args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [join(ROOT, 'bin/attnc.js'), 'analyze', ...args], { cwd: ROOT });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  child.on('close', (code) => resolve({ code, stdout, stderr }));
});
const attnc = (...args: string[]) => analyzeInProcess(args);
const ex = (name: string) => `examples/${name}.attn`;
const dir = mkdtempSync(join(tmpdir(), 'attnc-analyze-'));

describe('attnc analyze', () => {
  let json: any, svg: string, stdout: string;
  beforeAll(async () => {
    const r = await attnc(ex('scale_invariant'), '--compare', ex('causal'), ex('alibi'), '--max-distance', '1e5', '--samples', '16',
      '--json', join(dir, 'out.json'), '--svg', join(dir, 'out.svg'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    json = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8'));
    svg = readFileSync(join(dir, 'out.svg'), 'utf8');
    stdout = r.stdout;
  }, 60_000);

  it('scale_invariant passes both conditions; causal fails the first (and the second); alibi fails the first', () => {
    expect(json.spec).toBe('scale_invariant');
    expect(json.verdict.scale_invariant_total_attention).toBe(true);
    expect(json.verdict.scale_invariant_sparsity).toBe(true);
    expect(json.verdict.total_attention_max_over_min).toBeLessThanOrEqual(1.1);
    expect(json.verdict.entropy_slope).toBeLessThan(0.5);
    const [causal, alibi] = json.compare;
    expect(causal.spec).toBe('causal');
    expect(causal.verdict.scale_invariant_total_attention).toBe(false);
    expect(causal.verdict.total_attention_max_over_min).toBeCloseTo(100, 6);
    expect(causal.verdict.entropy_slope).toBeGreaterThan(0.9);
    expect(causal.verdict.scale_invariant_sparsity).toBe(false);
    expect(alibi.verdict.scale_invariant_total_attention).toBe(false);
    // Infinite max/min is written as the largest double (JSON has no Infinity).
    expect(alibi.verdict.total_attention_max_over_min).toBe(Number.MAX_VALUE);
  });

  it('writes the JSON shape of the issue', () => {
    for (const obj of [json, ...json.compare]) {
      const { compare: _, ...top } = obj;
      expect(Object.keys(top).sort()).toEqual(['delta', 'ranges', 'sigma', 'spec', 'verdict']);
      expect(obj.sigma).toBe(1);
      expect(obj.delta).toBe(10);
      expect(obj.ranges.map((r: any) => [r.start, r.end])).toEqual([[1, 10], [10, 100], [100, 1000], [1000, 1e4], [1e4, 1e5]]);
      for (const r of obj.ranges) {
        expect(Object.keys(r).sort()).toEqual(['end', 'entropy', 'entropy_stderr', 'start', 'total_attention', 'total_attention_stderr']);
        for (const v of Object.values(r)) expect(typeof v).toBe('number');
      }
      expect(Object.keys(obj.verdict).sort()).toEqual([
        'entropy_slope', 'scale_invariant_sparsity', 'scale_invariant_total_attention', 'total_attention_flat', 'total_attention_max_over_min',
      ]);
    }
  });

  it('prints a table per spec and a summary', () => {
    expect(stdout).toMatch(/scale_invariant \(examples\/scale_invariant\.attn\)/);
    expect(stdout).toMatch(/\[100000?, 1000000?\)|\[10000, 100000\)/);
    expect(stdout).toMatch(/^scale_invariant\s+1\.0\d+\s+0\.\d+\s+holds\s+holds$/m);
    expect(stdout).toMatch(/^causal\s+100\s+(0\.9|1\.0)\d\d\s+fails\s+fails$/m);
  });

  it('writes a well-formed two-panel SVG naming every spec', () => {
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // Tags balance (vega writes no comments, CDATA or processing instructions).
    const stack: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
      if (m[3]) continue;
      if (m[1]) expect(stack.pop()).toBe(m[2]);
      else stack.push(m[2]);
    }
    expect(stack).toEqual([]);
    for (const text of ['scale_invariant', 'causal', 'alibi', 'E[Z_t]: total unnormalised attention per range', 'expected entropy (nats)']) {
      expect(svg).toContain(`>${text}<`);
    }
  });

  it('bad arguments: one line, exit 2', async () => {
    const bad: string[][] = [
      ['--delta', '1'],
      ['--sigma', '-1'],
      ['--max-distance', '500'], // no two ranges start at t >= 100
      ['--max-distance', 'x'],
      ['--samples', '1'],
      ['--param', 'nope=1'],
      ['--param', 'tau'],
      ['--no-such-flag'],
      ['--input', 'nope=x.npy'],
    ];
    for (const args of bad) {
      const r = await attnc(ex('scale_invariant'), ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')[0], args.join(' ')).toMatch(/^(attnc: )?error: |^attnc: /);
      expect(r.stdout).toBe('');
    }
    // A table input that has no default must be given.
    const doc = await attnc(ex('document'), '--max-distance', '1e4');
    expect(doc.code).toBe(2);
    expect(doc.stderr).toMatch(/input 'doc' .* --input doc=FILE\.npy/);
    expect((await attnc('no/such.attn')).code).toBe(2);
  });

  it('the real CLI exits 2 on a bad flag and on a bad value, with one line', async () => {
    const [flag, value] = await Promise.all([
      spawnAttnc(ex('scale_invariant'), '--delta', '1'),
      spawnAttnc(ex('scale_invariant'), '--param', 'nope=1'),
    ]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^attnc: option '--delta <x>' argument '1' is invalid/);
    expect(value.code).toBe(2);
    expect(value.stderr).toBe("attnc: no spec has a param 'nope'\n");
  }, 60_000);

  it('a spec with errors: diagnostics, exit 1', async () => {
    const bad = join(dir, 'bad.attn');
    writeFileSync(bad, 'attention bad {\n  score = score * tua\n}\n');
    const r = await attnc(bad, '--max-distance', '1e4');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown name 'tua'/);
  });
});
