// `attnc`: one sub-command per file in this folder.
import { Command } from 'commander';
import { VERSION } from '../version.ts';
import { registerCompile } from './compile.ts';
import { registerRun } from './run.ts';
import { registerCheck } from './check.ts';
import { registerExplain } from './explain.ts';
import { registerAnalyze } from './analyze.ts';

// A reader that stops early (`attnc explain ... | head`) closes the pipe: that ends the output, not in a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const program = new Command('attnc')
  .description('Compile attention variants (.attn specs) to fused flash-attention kernels for WebGPU and CUDA')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ outputError: (s, write) => write(`attnc: ${s.replace(/^error: /, '')}`) })
  .exitOverride((err) => {
    // commander's own errors (bad flags, missing arguments) are usage errors: exit 2.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerCompile(program);
registerRun(program);
registerCheck(program);
registerExplain(program);
registerAnalyze(program);

await program.parseAsync(process.argv);
