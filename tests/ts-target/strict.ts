// Type-checking generated modules under `strict` in the two set-ups users have: a browser project (TypeScript's
// DOM library, which declares WebGPU) and a Node project with @webgpu/types and no DOM library.
import { createRequire } from 'node:module';
import { Project, ts } from 'ts-morph';

export const STRICT_SETUPS = {
  'lib.dom': { lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], extra: [] as string[] },
  '@webgpu/types without the DOM': { lib: ['lib.es2022.d.ts'], extra: [createRequire(import.meta.url).resolve('@webgpu/types/dist/index.d.ts')] },
};

/** The diagnostics (`file:line: message`) of the modules at `paths` in one set-up; [] when they type-check. */
export function strictDiagnostics(setup: { lib: string[]; extra: string[] }, paths: Iterable<string>): string[] {
  const project = new Project({
    compilerOptions: { strict: true, noEmit: true, noUnusedLocals: true, noUnusedParameters: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, lib: setup.lib, types: [] },
    skipAddingFilesFromTsConfig: true,
  });
  for (const path of [...setup.extra, ...paths]) project.addSourceFileAtPath(path);
  return project.getPreEmitDiagnostics().map((d) => `${d.getSourceFile()?.getBaseName()}:${d.getLineNumber()}: ${ts.flattenDiagnosticMessageText(d.getMessageText() as string | ts.DiagnosticMessageChain, ' ')}`);
}
