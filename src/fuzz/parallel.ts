// `npm run fuzz -- --jobs N`: N worker processes (forks of scripts/fuzz.ts
// with `--worker k`), each running the fuzz loop on its own share of the
// seed's stream (worker k takes indices k, k+N, k+2N, ..., so no two workers
// test the same spec and the union is what one long loop with that seed would
// test), all until one shared deadline. Processes, not threads: Dawn and the
// CUDA driver (through koffi) each keep per-process state, and a worker that
// crashes in native code takes down only itself.
//
// A worker sends its counts over IPC before each spec (so a worker that dies
// still contributes what it finished, and the parent knows which spec it was
// on) and once more at the end. The parent prefixes each worker's output with
// `[wK]`, kills a worker still running `grace` seconds past the deadline
// (a hung kernel, or a compile far slower than the budget), and merges the
// counts with mergeDiffStats / mergeFrontStats.
import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { DiffLoopStats } from './diff-loop.ts';
import type { FrontLoopStats } from './front-loop.ts';

/** What a worker sends to the parent. */
export type WorkerMessage<S> =
  | { t: 'progress'; stats: S; spec: number | null }
  | { t: 'result'; stats: S }
  | { t: 'unavailable'; message: string };

export interface WorkerReport<S> {
  index: number;
  /** The final counts, or null when the worker ended without sending them. */
  result: S | null;
  /** The last counts it sent (the final ones when it finished). */
  last: S | null;
  /** Seed of the spec it was on when it last reported. */
  spec: number | null;
  unavailable: string | null;
  /** How it ended: 'ok', 'exit code N', 'signal SIG', or 'killed Ns after the deadline'. */
  ended: string;
}

export interface RunWorkersOptions {
  /** The script to fork (scripts/fuzz.ts). */
  script: string;
  jobs: number;
  /** Arguments of worker k (the parent adds nothing). */
  args: (k: number) => string[];
  deadlineMs: number;
  graceSeconds: number;
  log: (line: string) => void;
}

export async function runWorkers<S>(o: RunWorkersOptions): Promise<WorkerReport<S>[]> {
  const one = (k: number) => new Promise<WorkerReport<S>>((resolve) => {
    const rep: WorkerReport<S> = { index: k, result: null, last: null, spec: null, unavailable: null, ended: 'ok' };
    const child = fork(o.script, o.args(k), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => o.log(`[w${k}] ${line}`));
    }
    child.on('message', (m: WorkerMessage<S>) => {
      if (m.t === 'progress') { rep.last = m.stats; rep.spec = m.spec; }
      else if (m.t === 'result') { rep.result = m.stats; rep.last = m.stats; }
      else if (m.t === 'unavailable') rep.unavailable = m.message;
    });
    let killed = false;
    const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, Math.max(0, o.deadlineMs - Date.now()) + o.graceSeconds * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (killed) rep.ended = `killed ${o.graceSeconds} s after the deadline`;
      else if (signal) rep.ended = `signal ${signal}`;
      else if (code !== 0 && rep.result === null && rep.unavailable === null) rep.ended = `exit code ${code}`;
      // A worker that sent its result may exit 1 (it found mismatches): that is counted from the result.
      resolve(rep);
    });
  });
  return Promise.all(Array.from({ length: o.jobs }, (_, k) => one(k)));
}

/** The share of `maxSpecs` (a total over all workers) that worker k of `jobs` runs. */
export function workerShare(maxSpecs: number | undefined, k: number, jobs: number): number | undefined {
  return maxSpecs === undefined ? undefined : Math.max(0, Math.ceil((maxSpecs - k) / jobs));
}

/** Sums the counts of several diff loops on one backend (the worst error is the max). */
export function mergeDiffStats(parts: DiffLoopStats[]): DiffLoopStats {
  const out: DiffLoopStats = { backend: '', specs: 0, kernels: 0, programs: 0, programsBy: {}, cases: 0, mismatches: 0, ambiguous: 0, worstRatio: 0, failures: [], seconds: 0 };
  const names = new Set<string>();
  for (const p of parts) {
    names.add(p.backend);
    out.specs += p.specs;
    out.kernels += p.kernels;
    out.programs += p.programs;
    for (const [k, n] of Object.entries(p.programsBy)) out.programsBy[k] = (out.programsBy[k] ?? 0) + n;
    out.cases += p.cases;
    out.mismatches += p.mismatches;
    out.ambiguous += p.ambiguous;
    out.worstRatio = Math.max(out.worstRatio, p.worstRatio);
    out.failures.push(...p.failures);
    out.seconds = Math.max(out.seconds, p.seconds);
  }
  out.backend = [...names].join(' | ');
  out.programsBy = Object.fromEntries(Object.entries(out.programsBy).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));
  return out;
}

/** Sums the counts of several front-end loops (worst times are the max; at most 20 failures kept). */
export function mergeFrontStats(parts: FrontLoopStats[]): FrontLoopStats {
  const out: FrontLoopStats = { specs: 0, kernels: 0, diagnostics: 0, crashes: 0, overBudget: 0, worstMsPerKb: 0, worstMs: 0, seconds: 0, failures: [] };
  for (const p of parts) {
    out.specs += p.specs;
    out.kernels += p.kernels;
    out.diagnostics += p.diagnostics;
    out.crashes += p.crashes;
    out.overBudget += p.overBudget;
    out.worstMsPerKb = Math.max(out.worstMsPerKb, p.worstMsPerKb);
    out.worstMs = Math.max(out.worstMs, p.worstMs);
    out.seconds = Math.max(out.seconds, p.seconds);
    out.failures.push(...p.failures);
  }
  out.failures = out.failures.slice(0, 20);
  return out;
}

/** Workers that did not finish normally, as lines for the summary (empty when all did). */
export function workerProblems<S>(reports: WorkerReport<S>[]): string[] {
  return reports.filter((r) => r.ended !== 'ok').map((r) => `worker ${r.index}: ${r.ended}${r.spec !== null ? `, last on spec seed ${r.spec}` : ''}`);
}

/** The one-line summary of a diff run (scripts/gpu-reliability.sh reads it). */
export function diffSummaryLine(name: string, s: DiffLoopStats, jobs: number, problems: number): string {
  return `fuzz summary: kind=diff backend=${name} programs=${s.programs} cases=${s.cases} mismatches=${s.mismatches} ${s.ambiguous ? `ambiguous=${s.ambiguous} ` : ''}` +
    `worst=${(s.worstRatio * 100).toFixed(1)}% specs=${s.specs} jobs=${jobs} worker_problems=${problems} seconds=${s.seconds.toFixed(0)} adapter="${s.backend}"`;
}

export function frontSummaryLine(s: FrontLoopStats, jobs: number, problems: number): string {
  return `fuzz summary: kind=front specs=${s.specs} crashes=${s.crashes} over_budget=${s.overBudget} kernels=${s.kernels} ` +
    `worst_ms_per_kb=${s.worstMsPerKb.toFixed(1)} jobs=${jobs} worker_problems=${problems} seconds=${s.seconds.toFixed(0)}`;
}
