// `npm run fuzz -- --seconds N [--seed S] [--kind front|diff] [--max-len L] [--d 32,64,128]`
// Long fuzzing runs; prints counts (specs fuzzed, crashes, worst time per KB
// for the front end; kernels, cases and mismatches per backend for diff).
// Exit status 1 when anything failed. See docs/RELIABILITY.md.
import { Command } from 'commander';
import { frontLoop } from '../src/fuzz/front-loop.ts';
import { diffLoop } from '../src/fuzz/diff-loop.ts';
import { openWebGpu } from '../src/runtime/webgpu.ts';
import type { Backend } from '../src/runtime/device.ts';

const opts = new Command()
  .option('--seconds <n>', 'how long to run', Number, 60)
  .option('--seed <n>', 'first seed', Number, 1)
  .option('--kind <kind>', 'front or diff', 'front')
  .option('--backend <names>', 'diff: webgpu,cuda (those that open)', 'webgpu,cuda')
  .option('--max-len <n>', 'diff: longest sequence', Number, 600)
  .option('--max-work <n>', 'diff: largest B*Hq*Nq*Nk per case', Number, 400_000)
  .option('--d <weights>', 'diff: weights of head dims 32,64,128', '6,3,1')
  .parse(process.argv)
  .opts();

process.env.XDG_RUNTIME_DIR ??= '/tmp/xdg';
const log = (line: string) => console.log(line);

if (opts.kind === 'front') {
  const s = frontLoop({ seed: opts.seed, seconds: opts.seconds, log });
  console.log(JSON.stringify(s, null, 2));
  process.exit(s.crashes > 0 || s.overBudget > 0 ? 1 : 0);
} else if (opts.kind === 'diff') {
  let failed = false;
  for (const name of String(opts.backend).split(',')) {
    let backend: Backend;
    try {
      backend = name === 'cuda' ? await (await import('../src/runtime/cuda.ts')).openCuda() : await openWebGpu();
    } catch (e) {
      console.log(`${name}: not available (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    const dWeights = String(opts.d).split(',').map(Number) as [number, number, number];
    const s = await diffLoop(backend, { seed: opts.seed, seconds: opts.seconds, maxLen: opts.maxLen, maxWork: opts.maxWork, dWeights, log });
    backend.dispose();
    console.log(JSON.stringify({ ...s, failures: s.failures.map((f) => f.file ?? f.spec.split('\n')[0]) }, null, 2));
    failed ||= s.mismatches > 0;
  }
  process.exit(failed ? 1 : 0);
} else {
  console.error(`--kind must be front or diff, not ${opts.kind}`);
  process.exit(2);
}
