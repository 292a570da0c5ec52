// `npm run fuzz -- --jobs N` (src/fuzz/parallel.ts): the workers' shares of
// the seed stream are disjoint and add up to one loop's; the counts merge;
// a worker that dies or overruns is reported, with its partial counts kept;
// and one real `--jobs 2` run on WebGPU (2 tiny D = 32 specs, a few seconds
// on lavapipe) so the forked path cannot rot.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffLoop, type DiffLoopStats } from '../../src/fuzz/diff-loop.ts';
import { diffSummaryLine, mergeDiffStats, mergeFrontStats, runWorkers, workerProblems, workerShare } from '../../src/fuzz/parallel.ts';
import { frontLoop } from '../../src/fuzz/front-loop.ts';
import { DeviceError, type Backend } from '../../src/runtime/device.ts';
import { openWebGpu } from '../../src/runtime/webgpu.ts';

/** A backend that renders nothing and fails every run: counts specs and programs without a GPU. */
// Typed as a Backend (no cast), so a method added to the interface must be added here too.
const failingBackend: Backend = {
  name: 'webgpu',
  describe: () => 'fake',
  limits: () => ({ maxWorkgroupStorageBytes: 32768, maxInvocationsPerWorkgroup: 256, maxWorkgroupSizeX: 256, maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 28, maxComputeWorkgroupsPerDimension: 65535 }),
  codegen: () => ({ target: 'wgsl' }),
  dtypes: () => ['f32', 'f16'],
  run: async () => { throw new DeviceError('Fake', 'no device'); },
  dispose: () => {},
};

async function seedsOf(o: { offset?: number; stride?: number; maxSpecs?: number }): Promise<{ seeds: number[]; stats: DiffLoopStats; threw: string[] }> {
  const seeds: number[] = [], threw: string[] = [];
  const log = (l: string) => { if (l.includes('the backend threw')) threw.push(l.split('\n')[0]); };
  const stats = await diffLoop(failingBackend, { seed: 5, seconds: 600, ...o, saveDir: null, onSpec: (s) => seeds.push(s), log });
  return { seeds, stats, threw };
}

describe('--jobs: shares of the seed stream', () => {
  it('workers test disjoint specs whose union is one loop\'s, and the counts merge to its counts', async () => {
    const whole = await seedsOf({ maxSpecs: 9 });
    const parts = await Promise.all([0, 1, 2].map((k) => seedsOf({ offset: k, stride: 3, maxSpecs: workerShare(9, k, 3) })));
    const all = parts.flatMap((p) => p.seeds);
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual([...whole.seeds].sort());
    const merged = mergeDiffStats(parts.map((p) => p.stats));
    for (const key of ['specs', 'kernels', 'programs', 'cases', 'mismatches'] as const) expect(merged[key]).toBe(whole.stats[key]);
    expect(merged.programsBy).toEqual(Object.fromEntries(Object.entries(whole.stats.programsBy).sort()));
    expect(merged.failures.length).toBe(whole.stats.failures.length);
    // A backend error on the first shape still counts the program (checked, and failed).
    expect(whole.stats.programs).toBe(9);
    expect(whole.stats.mismatches).toBe(9);
    expect(whole.threw).toHaveLength(9);
    for (const line of whole.threw) expect(line).toMatch(/the backend threw: Fake: no device$/);
  });

  it('splits --max-specs over the workers', () => {
    expect([0, 1, 2, 3].map((k) => workerShare(10, k, 4))).toEqual([3, 3, 2, 2]);
    expect(workerShare(1, 1, 2)).toBe(0);
    expect(workerShare(undefined, 0, 2)).toBeUndefined();
  });

  it('front-end workers take disjoint rounds too', () => {
    const a = frontLoop({ seed: 3, seconds: 60, maxSpecs: 40, pathological: false, offset: 0, stride: 2 });
    const b = frontLoop({ seed: 3, seconds: 60, maxSpecs: 40, pathological: false, offset: 1, stride: 2 });
    const m = mergeFrontStats([a, b]);
    expect(m.specs).toBe(80);
    expect(m.crashes).toBe(0);
    expect(m.kernels + m.diagnostics).toBeLessThanOrEqual(80);
  });
});

describe('--jobs: the worker driver', () => {
  it('keeps the counts of a worker that dies, says which spec it was on, and kills one that overruns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-workers-'));
    const script = join(dir, 'worker.mjs');
    writeFileSync(script, `
      const k = Number(process.argv[2]);
      const stats = { specs: 1, programs: 1 };
      process.send({ t: 'progress', stats, spec: 100 + k });
      if (k === 0) process.send({ t: 'result', stats }, () => process.exit(1));
      else if (k === 1) process.send({ t: 'progress', stats, spec: 101 }, () => process.kill(process.pid, 'SIGSEGV'));
      else setInterval(() => {}, 1000);
    `);
    const lines: string[] = [];
    // The deadline leaves time for node to start on a loaded 2-core machine.
    const reports = await runWorkers<{ specs: number }>({ script, jobs: 3, args: (k) => [String(k)], deadlineMs: Date.now() + 3000, graceSeconds: 1, log: (l) => lines.push(l) });
    expect(reports.map((r) => r.last?.specs)).toEqual([1, 1, 1]);
    expect(reports[0].ended).toBe('ok'); // exit 1 after its result: a run with mismatches, counted from the result
    expect(reports[1].ended).toBe('signal SIGSEGV');
    expect(reports[2].ended).toMatch(/^killed/);
    expect(workerProblems(reports)).toEqual([
      'worker 1: signal SIGSEGV, last on spec seed 101',
      'worker 2: killed 1 s after the deadline, last on spec seed 102',
    ]);
  }, 20_000);
});

let webgpu = false;
try { (await openWebGpu()).dispose(); webgpu = true; } catch { /* no adapter: the end-to-end run is skipped */ }

(webgpu ? describe : describe.skip)('--jobs 2 end to end (WebGPU)', () => {
  it('npm run fuzz -- --kind diff --jobs 2 runs both workers and prints the merged summary', () => {
    const saveDir = mkdtempSync(join(tmpdir(), 'attnc-jobs-'));
    const r = spawnSync(process.execPath, [
      '--import', 'tsx', 'scripts/fuzz.ts', '--kind', 'diff', '--backend', 'webgpu', '--jobs', '2', '--max-specs', '2', '--seconds', '300',
      '--d', '1,0,0', '--max-len', '40', '--max-work', '4000', '--seed', '17', '--save-dir', saveDir,
    ], { cwd: join(import.meta.dirname, '../..'), encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp/xdg' }, timeout: 240_000 });
    const out = r.stdout + r.stderr;
    const line = out.split('\n').find((l) => l.startsWith('fuzz summary: kind=diff backend=webgpu'));
    expect(line, out).toBeDefined();
    expect(line).toMatch(/ programs=2 /);
    expect(line).toMatch(/ mismatches=0 /);
    expect(line).toMatch(/ jobs=2 worker_problems=0 /);
    expect(Number(/ cases=(\d+)/.exec(line!)![1])).toBeGreaterThanOrEqual(2);
    expect(r.status, out).toBe(0);
  }, 240_000);
});

it('the summary line has the fields scripts/gpu-reliability.sh reads', () => {
  const s = mergeDiffStats([]);
  expect(diffSummaryLine('cuda', s, 12, 0)).toMatch(/^fuzz summary: kind=diff backend=cuda programs=0 cases=0 mismatches=0 worst=0.0% /);
});
