// Shared by the analysis tests: load an example spec as a SpecModel.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { frontEnd } from '../../src/compiler/compile.ts';
import { SpecModel } from '../../src/analysis/model.ts';
import { analysisTables } from '../../src/analysis/tables.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function exampleBlock(name: string) {
  const path = `${ROOT}examples/${name}.attn`;
  const fe = frontEnd(path, readFileSync(path, 'utf8'));
  if (!fe.ok) throw new Error(`${name} does not compile: ${fe.diagnostics.map((d) => d.message).join('; ')}`);
  return fe.block;
}

/** The model `analyze` builds, with the default tables (only f32[heads] ones have a default). */
export function exampleModel(name: string, maxDistance: number, params: Record<string, number> = {}): SpecModel {
  const block = exampleBlock(name);
  const tables = analysisTables(lowerBlock(block).inputs, {}, maxDistance);
  return new SpecModel(block, { maxDistance, params, tables });
}

/**
 * Runs `attnc analyze ARGS` in this process (a spawned CLI pays seconds of
 * start-up): commander errors and the command's own failures come back as the
 * exit code main.ts would give (commander's: 2), with what went to stdout/stderr.
 */
export async function analyzeInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { Command } = await import('commander');
  const { registerAnalyze } = await import('../../src/cli/analyze.ts');
  let stdout = '', stderr = '';
  const program = new Command('attnc').exitOverride().configureOutput({ writeErr: (s) => { stderr += s; }, writeOut: (s) => { stdout += s; } });
  registerAnalyze(program);
  const out = process.stdout.write, err = process.stderr.write, savedCode = process.exitCode;
  process.stdout.write = ((s: string) => { stdout += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { stderr += s; return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code = 0;
  try {
    await program.parseAsync(['node', 'attnc', 'analyze', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = savedCode;
  }
  return { code, stdout, stderr };
}
