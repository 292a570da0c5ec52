// The `ts` target: a TypeScript module that embeds one WGSL kernel and its
// manifest and exports a typed class to run it on any GPUDevice (a browser's
// navigator.gpu, or Dawn in Node), with nothing else to install.
//
// The module is built with ts-morph (declarations as structures, so names and
// types are printed by TypeScript's own printer) and its ABI is compiled in:
// the uniform offsets, the bind group layout and the dispatch grid come from
// the manifest (render/wgsl-abi.ts) as constants and straight-line code, not
// read at run time (the method bodies: ts-module-code.ts). The f16 conversion
// is the runtime's own (runtime/half.ts), copied in by ts-morph, so there is
// one tested implementation.
//
// User names reach the module only as JSON string literals (property names,
// labels, error messages): a spec's names are identifiers, but TypeScript's
// reserved words are not ours to police.
import type { SourceFile } from 'ts-morph';
import type { CompiledKernel, KernelManifest } from '../manifest.ts';
import type { WgslAbi, WgslBinding } from './wgsl-abi.ts';
import { bindStatements, checkShapeStatements, createStatements, halfHelpers, key, paramOrStatements, runStatements, type ModuleContext } from './ts-module-code.ts';

/** `scale_invariant` -> `ScaleInvariant` (spec names are [A-Za-z_][A-Za-z0-9_]*). */
export function pascalCase(name: string): string {
  const parts = name.split('_').filter((p) => p.length > 0);
  const joined = parts.map((p) => p[0].toUpperCase() + p.slice(1)).join('');
  return /^[A-Za-z]/.test(joined) ? joined : `Spec${joined}`;
}


/** `text` as a TypeScript template literal, line for line (so the embedded kernel stays readable). */
export function templateLiteral(text: string): string {
  return `\`${text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')}\``;
}

export interface TsModuleOptions {
  /** The command that regenerates the module, for its header. */
  command: string;
}

export async function renderTsModule(kernel: CompiledKernel, opts: TsModuleOptions): Promise<string> {
  const m = kernel.manifest;
  if (m.target !== 'wgsl') throw new Error(`internal error: the ts target embeds WGSL kernels, got ${m.target}`);
  const abi = m.abi as unknown as WgslAbi;
  const half = m.dtype === 'f16';
  const bytesPerElem = half ? 2 : 4;
  const base = pascalCase(m.spec);
  const cls = `${base}Attention`;
  const paramsType = `${base}Params`;
  const tablesType = `${base}Tables`;
  const tableBuffersType = `${base}TableBuffers`;
  const tables = abi.bindings.filter((b) => b.role === 'table');
  const D = m.headDim;

  const { Project, Scope } = await import('ts-morph');
  const file = new Project({ useInMemoryFileSystem: true }).createSourceFile('kernel.ts', '', { overwrite: true });

  await addEmbeddedKernel(file, kernel, opts.command, {
    what: 'WGSL',
    wgsl: 'The WGSL source of the kernel.',
    manifest: 'The manifest attnc wrote with the kernel: tiles, bindings, uniform layout, params, inputs, analyses.',
  });

  addSpecTypes(file, m, tables, { paramsType, tablesType, tableBuffersType });
  file.addInterface({
    isExported: true, name: 'AttentionBuffers',
    docs: [`GPU buffers of one call (STORAGE usage). ${half ? 'Q, K, V and O hold f16 values (2 bytes each, in order)' : 'Q, K, V and O hold f32 values'}; LSE is f32 [B, Hq, Nq], natural log. O and LSE are written.`],
    properties: ['q', 'k', 'v', 'o', 'lse'].map((name) => ({ name, type: 'GPUBuffer', isReadonly: true })),
  });
  file.addInterface({
    isExported: true, name: 'BoundCall',
    docs: ['One call bound to its buffers: encode it as often as needed, destroy it when done (it owns a uniform buffer).'],
    properties: [{ name: 'workgroups', type: 'readonly [number, number, number]', isReadonly: true }],
    methods: [
      { name: 'encode', parameters: [{ name: 'encoder', type: 'GPUCommandEncoder' }], returnType: 'void', docs: ['Records the dispatch as one compute pass.'] },
      { name: 'destroy', returnType: 'void' },
    ],
  });

  const ctx: ModuleContext = { m, abi, tables, D, half, bytesPerElem, cls, tablesType, tableBuffersType, label: key(m.spec) };

  file.addClass({
    isExported: true, name: cls,
    docs: [`Attention ${key(m.spec)} on the GPU: create() once per device, then run() (arrays in, arrays out) or bind() + encode() (your buffers, your command encoder).`],
    properties: [
      { name: 'headDim', isStatic: true, isReadonly: true, initializer: `${D}` },
      { name: 'dtype', isStatic: true, isReadonly: true, initializer: key(m.dtype) },
    ],
    ctors: [{
      scope: Scope.Private,
      parameters: [
        { name: 'device', type: 'GPUDevice', isReadonly: true, scope: Scope.Public },
        { name: 'pipeline', type: 'GPUComputePipeline', isReadonly: true, scope: Scope.Private },
        { name: 'layout', type: 'GPUBindGroupLayout', isReadonly: true, scope: Scope.Private },
      ],
    }],
    methods: [
      {
        name: 'create', isStatic: true, isAsync: true, returnType: `Promise<${cls}>`,
        docs: [`Compiles the kernel for \`device\`; throws with the WGSL compiler's messages if the device refuses it.${5 + tables.length > 8 ? ` The device needs maxStorageBuffersPerShaderStage >= ${5 + tables.length} (the default is 8).` : ''}`],
        parameters: [{ name: 'device', type: 'GPUDevice' }],
        statements: createStatements(ctx),
      },
      {
        name: 'byteSizes', isStatic: true,
        returnType: '{ q: number; k: number; v: number; o: number; lse: number }',
        docs: ['Bytes of each buffer for a shape (before any rounding up for alignment).'],
        parameters: [{ name: 'shape', type: 'AttentionShape' }],
        statements: [
          `const q = shape.B * shape.Hq * shape.Nq * ${D} * ${bytesPerElem}, kv = shape.B * shape.Hkv * shape.Nk * ${D} * ${bytesPerElem};`,
          `return { q, k: kv, v: kv, o: q, lse: shape.B * shape.Hq * shape.Nq * 4 };`,
        ],
      },
      {
        name: 'bind',
        docs: ['Binds one call: checks the shape and params, writes them into a uniform buffer, and makes the bind group.'],
        parameters: [
          { name: 'buffers', type: 'AttentionBuffers' },
          { name: 'shape', type: 'AttentionShape' },
          { name: 'params', type: `${paramsType} | undefined`, initializer: 'undefined' },
          ...(tables.length ? [{ name: 'tableBuffers', type: tableBuffersType }] : []),
        ],
        returnType: 'BoundCall',
        statements: bindStatements(ctx),
      },
      {
        name: 'run', isAsync: true,
        docs: [`Uploads Q, K and V (f32 arrays${half ? ', stored as f16' : ''}), runs, and reads O (f32, [B, Hq, Nq, ${D}]) and LSE back; frees what it created.`],
        parameters: [
          { name: 'inputs', type: '{ readonly q: Float32Array; readonly k: Float32Array; readonly v: Float32Array }' },
          { name: 'shape', type: 'AttentionShape' },
          { name: 'params', type: `${paramsType} | undefined`, initializer: 'undefined' },
          ...(tables.length ? [{ name: 'tables', type: tablesType }] : []),
        ],
        returnType: 'Promise<{ o: Float32Array; lse: Float32Array }>',
        statements: runStatements(ctx),
      },
    ],
  });

  file.addFunction({
    name: 'checkShape', returnType: 'void',
    parameters: [{ name: 'shape', type: 'AttentionShape' }, { name: 'maxWorkgroups', type: 'number' }],
    statements: checkShapeStatements(ctx),
  });

  await addHelpers(file, m, half);
  file.formatText({ indentSize: 2, convertTabsToSpaces: true });
  return file.getFullText();
}

/**
 * The module's head, shared by the forward and backward modules: the header comment, the embedded WGSL and
 * manifest, and the WebGPU flag values. `docs.what` says what the module runs, after the spec hash.
 */
export async function addEmbeddedKernel(file: SourceFile, kernel: CompiledKernel, command: string, docs: { what: string; wgsl: string; manifest: string }): Promise<void> {
  const m = kernel.manifest;
  const { VariableDeclarationKind } = await import('ts-morph');
  file.addStatements([
    `// Generated by attnc ${m.attnc} from attention ${key(m.spec)} (spec hash ${m.hash}): ${docs.what}, ${m.dtype} storage, head dim ${m.headDim}.`,
    '// Runs on any GPUDevice: a browser\'s navigator.gpu, or Dawn in Node (the npm `webgpu` package).',
    '// Do not edit; regenerate with',
    `//   ${command}`,
  ]);
  file.addVariableStatement({
    isExported: true, declarationKind: VariableDeclarationKind.Const,
    docs: [docs.wgsl],
    declarations: [{ name: 'WGSL', type: 'string', initializer: templateLiteral(kernel.source) }],
  });
  file.addVariableStatement({
    isExported: true, declarationKind: VariableDeclarationKind.Const,
    docs: [docs.manifest],
    declarations: [{ name: 'MANIFEST', initializer: `${JSON.stringify(m, null, 2)} as const` }],
  });
  file.addStatements([
    '// WebGPU flag values (fixed by the WebGPU spec), so that the module needs neither the GPUBufferUsage,',
    '// GPUShaderStage and GPUMapMode globals (Dawn in Node installs them only on request) nor their types.',
    'const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;',
    'const SHADER_STAGE_COMPUTE = 0x4;',
    'const MAP_MODE_READ = 0x1;',
  ]);
}

/** The helpers both modules use: paramOr where the spec has params, the f16 conversions for f16 storage. */
export async function addHelpers(file: SourceFile, m: KernelManifest, half: boolean): Promise<void> {
  if (m.params.length) {
    file.addFunction({
      name: 'paramOr', returnType: 'number',
      docs: ['A param\'s value: the caller\'s own property (never an inherited one such as `toString`), else the spec\'s default.'],
      parameters: [{ name: 'params', type: 'object | undefined' }, { name: 'name', type: 'string' }, { name: 'fallback', type: 'number' }, { name: 'integer', type: 'boolean' }],
      statements: paramOrStatements(m.spec),
    });
  }
  if (half) {
    file.addStatements(await halfHelpers());
    file.addFunction({
      name: 'toHalves', returnType: 'Uint16Array', parameters: [{ name: 'x', type: 'Float32Array' }],
      statements: ['const out = new Uint16Array(x.length);', 'for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);', 'return out;'],
    });
    file.addFunction({
      name: 'fromHalves', returnType: 'Float32Array', parameters: [{ name: 'h', type: 'Uint16Array' }],
      statements: ['const out = new Float32Array(h.length);', 'for (let i = 0; i < h.length; i++) out[i] = f16BitsToF32(h[i]);', 'return out;'],
    });
  }
}

/** The declarations both modules (forward and backward) export: the call's shape, the spec's params and tables. */
export function addSpecTypes(file: SourceFile, m: KernelManifest, tables: WgslBinding[], names: { paramsType: string; tablesType: string; tableBuffersType: string }): void {
  const D = m.headDim;
  const { paramsType, tablesType, tableBuffersType } = names;
  file.addInterface({
    isExported: true, name: 'AttentionShape',
    docs: [`Sizes of one call. Q is [B, Hq, Nq, ${D}], K and V [B, Hkv, Nk, ${D}]; Hq a multiple of Hkv; with Nq < Nk the queries are the last Nq positions.`],
    properties: ['B', 'Hq', 'Hkv', 'Nq', 'Nk'].map((name) => ({ name, type: 'number', isReadonly: true })),
  });
  file.addInterface({
    isExported: true, name: paramsType,
    docs: [m.params.length ? 'Runtime params of the spec; a missing one takes the spec\'s default.' : 'The spec has no runtime params.'],
    properties: m.params.map((p) => ({
      name: key(p.name), type: 'number', hasQuestionToken: true, isReadonly: true,
      docs: [`${p.type}, default ${p.default}${p.type === 'i32' ? ' (an integer)' : ''}`],
    })),
  });
  file.addInterface({
    isExported: true, name: tablesType,
    docs: [tables.length ? 'Table inputs of the spec, as arrays (run()).' : 'The spec reads no tables.'],
    properties: tables.map((t) => ({
      name: key(t.name!), type: t.elem === 'i32' ? 'Int32Array' : 'Float32Array', isReadonly: true,
      docs: [`${t.elem}[${t.axis}]: one value per ${t.axis === 'heads' ? 'query head (Hq)' : t.axis === 'batch' ? 'batch entry (B)' : t.axis === 'q_len' ? 'query position (Nq)' : 'key position (Nk)'}`],
    })),
  });
  file.addInterface({
    isExported: true, name: tableBuffersType,
    docs: [tables.length ? 'Table inputs as GPU buffers (bind()): i32 or f32 elements, STORAGE usage.' : 'The spec reads no tables.'],
    properties: tables.map((t) => ({ name: key(t.name!), type: 'GPUBuffer', isReadonly: true })),
  });
}

/**
 * The module as plain JavaScript (ES2022 modules) and its declarations, for a web
 * page without a TypeScript tool chain (`<script type="module">`).
 */
export async function emitJavaScript(tsSource: string, baseName: string): Promise<{ js: string; dts: string }> {
  const { Project, ts } = await import('ts-morph');
  const project = new Project({
    useInMemoryFileSystem: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, declaration: true, strict: true, removeComments: false, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'] },
  });
  project.createSourceFile(`/${baseName}.ts`, tsSource);
  const out = project.emitToMemory();
  const text = (ext: string) => {
    const f = out.getFiles().find((x) => x.filePath.endsWith(`${baseName}${ext}`));
    if (!f) throw new Error(`internal error: no ${ext} emitted for ${baseName}`);
    return f.text;
  };
  return { js: text('.js'), dts: text('.d.ts') };
}
