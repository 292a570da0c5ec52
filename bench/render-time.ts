// In-process time of the compiler's half of "spec -> loaded module": parse,
// check, lower, analyze and render CUDA-C for each bench spec, without Node's
// start-up. The GPU half (NVRTC + module load) is measured by bench/run.py.
//   npx tsx bench/render-time.ts bench/specs/*.attn  ->  JSON on stdout
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compileSpec, type CompileOptions } from '../src/compiler/compile.ts';

const files = process.argv.slice(2);
const opts: CompileOptions = { target: 'cuda', dtype: 'bf16', headDim: 128, arch: 'sm_90a' };
const out: Record<string, { first_ms: number; median_ms: number } | number> = {};
let processFirst: number | undefined;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    // A fresh spec text each time (a trailing comment) so that nothing can be memoised.
    const t0 = performance.now();
    const r = compileSpec(file, `${text}\n// ${i}\n`, opts);
    times.push(performance.now() - t0);
    if ('diagnostics' in r) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  }
  processFirst ??= times[0];
  const rest = times.slice(1).sort((a, b) => a - b);
  out[basename(file, '.attn')] = { first_ms: +times[0].toFixed(2), median_ms: +rest[rest.length >> 1].toFixed(2) };
}
// The very first compile of the process pays for the JIT warming up: the honest "cold" figure.
out._process_first_ms = +(processFirst ?? 0).toFixed(2);
console.log(JSON.stringify(out));
