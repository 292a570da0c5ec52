// The `ts` target of the backward kernels (`--target ts --backward`): a TypeScript module that embeds the two
// WGSL stages (render/wgsl-bwd.ts) and exports a typed class to run them on any GPUDevice, beside the forward
// module (render/ts-module.ts), whose conventions it follows: the ABI compiled in from the manifest, user names
// only as JSON string literals, the runtime's own f16 conversion copied in.
import type { CompiledKernel } from '../manifest.ts';
import { AXIS_SIZE } from '../syntax/ast.ts';
import { bindingType } from './wgsl-abi.ts';
import type { WgslBackwardAbi } from './wgsl-bwd-abi.ts';
import { addEmbeddedKernel, addHelpers, addSpecTypes, pascalCase, templateLiteral, type TsModuleOptions } from './ts-module.ts';
import { key, uniformStatements } from './ts-module-code.ts';

export async function renderTsBackwardModule(kernel: CompiledKernel, opts: TsModuleOptions): Promise<string> {
  const m = kernel.manifest;
  if (m.target !== 'wgsl' || m.pass !== 'backward') throw new Error('internal error: the backward ts module embeds WGSL backward kernels');
  const abi = m.abi as unknown as WgslBackwardAbi;
  const half = m.dtype === 'f16';
  const bytesPerElem = half ? 2 : 4;
  const base = pascalCase(m.spec);
  const cls = `${base}AttentionBackward`;
  const names = { paramsType: `${base}Params`, tablesType: `${base}Tables`, tableBuffersType: `${base}TableBuffers` };
  const tables = abi.bindings.filter((b) => b.role === 'table');
  const D = m.headDim;
  const label = key(m.spec);
  const storage = Math.max(...abi.stages.map((s) => s.bindings.length - 1));

  const { Project, Scope } = await import('ts-morph');
  const file = new Project({ useInMemoryFileSystem: true }).createSourceFile('kernel.ts', '', { overwrite: true });
  await addEmbeddedKernel(file, kernel, opts.command, {
    what: 'the backward pass (dQ, dK, dV), WGSL',
    wgsl: 'The WGSL source of the backward kernels (two entry points, run in order).',
    manifest: 'The manifest attnc wrote with the kernels: tiles, bindings and stages, uniform layout, params, inputs.',
  });
  addSpecTypes(file, m, tables, names);
  file.addInterface({
    isExported: true, name: 'GradientBuffers',
    docs: [`GPU buffers of one backward call (STORAGE usage). ${half ? 'Tensors hold f16 values (2 bytes each, in order)' : 'Tensors hold f32 values'}: Q, K, V, the forward call's O, and dO are read; dQ, dK, dV are written. LSE (f32 [B, Hq, Nq], the forward call's) is copied from, so it needs COPY_SRC usage too.`],
    properties: ['q', 'k', 'v', 'o', 'lse', 'dO', 'dq', 'dk', 'dv'].map((name) => ({ name, type: 'GPUBuffer', isReadonly: true })),
  });
  file.addInterface({
    isExported: true, name: 'BoundBackwardCall',
    docs: ['One backward call bound to its buffers: encode it as often as needed, destroy it when done (it owns a uniform buffer and the stats buffer).'],
    properties: [{ name: 'workgroups', type: 'readonly (readonly [number, number, number])[]', isReadonly: true, docs: ['Per stage, in order.'] }],
    methods: [
      { name: 'encode', parameters: [{ name: 'encoder', type: 'GPUCommandEncoder' }], returnType: 'void', docs: ['Records both stages in one compute pass.'] },
      { name: 'destroy', returnType: 'void' },
    ],
  });

  const layoutOf = (bindings: number[]) => abi.bindings.filter((b) => bindings.includes(b.binding))
    .map((b) => `{ binding: ${b.binding}, visibility: SHADER_STAGE_COMPUTE, buffer: { type: ${key(bindingType(b))} } }`);
  const byRole: Record<string, string> = {
    uniform: 'uniforms', q: 'buffers.q', k: 'buffers.k', v: 'buffers.v', o: 'buffers.o', stats: 'stats', do: 'buffers.dO',
    dq: 'buffers.dq', dk: 'buffers.dk', dv: 'buffers.dv',
  };
  const entriesOf = (bindings: number[]) => abi.bindings.filter((b) => bindings.includes(b.binding))
    .map((b) => `{ binding: ${b.binding}, resource: { buffer: ${b.role === 'table' ? `tableBuffers[${key(b.name!)}]` : byRole[b.role]} } }`);
  const gridOf = (d: { x: string; y: string; z: string }) => [d.x, d.y, d.z].map((f) => {
    const c = /^ceil\((\w+) \/ (\d+)\)$/.exec(f);
    return c ? `Math.ceil(shape.${c[1]} / ${c[2]})` : `shape.${f}`;
  }).join(', ');

  const create = [
    ...(storage > 8
      ? [`if (device.limits.maxStorageBuffersPerShaderStage < ${storage}) throw new Error(\`attention ${m.spec} backward: a stage binds ${storage} storage buffers and this device allows \${device.limits.maxStorageBuffersPerShaderStage} per shader stage: request requiredLimits: { maxStorageBuffersPerShaderStage: ${storage} } (up to the adapter's limit) when creating the device\`);`]
      : []),
    `const module = device.createShaderModule({ label: ${label}, code: WGSL });`,
    'const errors = (await module.getCompilationInfo()).messages.filter((msg) => msg.type === \'error\');',
    `if (errors.length) throw new Error(\`attention ${m.spec} backward: WGSL compilation failed: \${errors.map((e) => \`\${e.lineNum}:\${e.linePos} \${e.message}\`).join('; ')}\`);`,
    '// One explicit layout per stage: each binds only what it uses.',
    'const stages: { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }[] = [];',
    'device.pushErrorScope(\'validation\');',
    ...abi.stages.flatMap((s) => [
      `{`,
      `  const layout = device.createBindGroupLayout({ label: ${key(`${m.spec} ${s.entryPoint}`)}, entries: [\n    ${layoutOf(s.bindings).join(',\n    ')},\n  ] });`,
      `  const pipeline = device.createComputePipeline({ label: ${key(`${m.spec} ${s.entryPoint}`)}, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: ${key(s.entryPoint)} } });`,
      '  stages.push({ pipeline, layout });',
      '}',
    ]),
    'const error = await device.popErrorScope();',
    `if (error) throw new Error(\`attention ${m.spec} backward: the device refused the pipelines (they need ${m.tile.threads} invocations per workgroup and the workgroup memory of ${m.tile.bm}x${m.tile.bn} tiles): \${error.message}\`);`,
    `return new ${cls}(device, stages);`,
  ];

  const bind = [
    'checkShape(shape, this.device.limits.maxComputeWorkgroupsPerDimension);',
    ...uniformStatements(m, abi.uniform, D, `${m.spec} backward uniforms`),
    '// stats: the LSE (copied in by encode()), then delta = rowsum(dO * O) per query row, written by the first stage.',
    'const lseBytes = shape.B * shape.Hq * shape.Nq * 4;',
    `const stats = this.device.createBuffer({ label: ${key(`${m.spec} backward stats`)}, size: Math.max(16, Math.ceil(2 * lseBytes / 16) * 16), usage: USAGE.STORAGE | USAGE.COPY_DST });`,
    'const lse = buffers.lse;',
    ...abi.stages.map((s, i) => `const group${i} = this.device.createBindGroup({ label: ${key(`${m.spec} ${s.entryPoint}`)}, layout: this.stages[${i}].layout, entries: [\n  ${entriesOf(s.bindings).join(',\n  ')},\n] });`),
    `const workgroups = [${abi.stages.map((s) => `[${gridOf(s.dispatch)}] as const`).join(', ')}] as const;`,
    `const groups = [${abi.stages.map((_, i) => `group${i}`).join(', ')}];`,
    'const stages = this.stages;',
    'return {',
    '  workgroups,',
    '  encode(encoder: GPUCommandEncoder): void {',
    '    encoder.copyBufferToBuffer(lse, 0, stats, 0, lseBytes);',
    '    // One pass: WebGPU orders the dispatches and makes the first stage\'s delta visible to the second.',
    '    const pass = encoder.beginComputePass();',
    '    stages.forEach((stage, i) => {',
    '      pass.setPipeline(stage.pipeline);',
    '      pass.setBindGroup(0, groups[i]);',
    '      pass.dispatchWorkgroups(workgroups[i][0], workgroups[i][1], workgroups[i][2]);',
    '    });',
    '    pass.end();',
    '  },',
    '  destroy(): void { uniforms.destroy(); stats.destroy(); },',
    '};',
  ];

  const asStored = (x: string) => (half ? `toHalves(${x})` : x);
  const run = [
    'checkShape(shape, this.device.limits.maxComputeWorkgroupsPerDimension);',
    `const sizes = ${cls}.byteSizes(shape);`,
    `for (const [name, x] of [['Q', inputs.q], ['K', inputs.k], ['V', inputs.v], ['O', inputs.o], ['LSE', inputs.lse], ['dO', inputs.dO]] as const) if (!(x instanceof Float32Array)) throw new TypeError(\`attention ${m.spec} backward: \${name} must be a Float32Array\`);`,
    ...tables.map((t) => `if (!(tables[${key(t.name!)}] instanceof ${t.elem === 'i32' ? 'Int32Array' : 'Float32Array'})) throw new TypeError(\`attention ${m.spec} backward: table ${t.name} must be a${t.elem === 'i32' ? 'n Int32Array' : ' Float32Array'}\`);`),
    `for (const [name, x] of [['Q', inputs.q], ['O', inputs.o], ['dO', inputs.dO]] as const) if (x.length !== sizes.q / ${bytesPerElem}) throw new RangeError(\`attention ${m.spec} backward: \${name} must hold B*Hq*Nq*${D} = \${sizes.q / ${bytesPerElem}} values, got \${x.length}\`);`,
    `if (inputs.k.length !== sizes.k / ${bytesPerElem} || inputs.v.length !== sizes.k / ${bytesPerElem}) throw new RangeError(\`attention ${m.spec} backward: K and V must hold B*Hkv*Nk*${D} = \${sizes.k / ${bytesPerElem}} values each\`);`,
    `if (inputs.lse.length !== sizes.lse / 4) throw new RangeError(\`attention ${m.spec} backward: LSE must hold B*Hq*Nq = \${sizes.lse / 4} values, got \${inputs.lse.length}\`);`,
    ...tables.map((t) => `if (tables[${key(t.name!)}].length !== shape.${AXIS_SIZE[t.axis!]}) throw new RangeError(\`attention ${m.spec} backward: table ${t.name} is ${t.elem}[${t.axis}], so it needs \${shape.${AXIS_SIZE[t.axis!]}} values, got \${tables[${key(t.name!)}].length}\`);`),
    'const d = this.device;',
    'const created: GPUBuffer[] = [];',
    'let call: BoundBackwardCall | undefined;',
    'const buffer = (label: string, bytes: number, usage: number): GPUBuffer => {',
    '  const b = d.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });',
    '  created.push(b);',
    '  return b;',
    '};',
    'const upload = (label: string, data: ArrayBufferView, extra = 0): GPUBuffer => {',
    '  const b = buffer(label, data.byteLength, USAGE.STORAGE | USAGE.COPY_DST | extra);',
    '  d.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);',
    '  return b;',
    '};',
    'try {',
    '  const out = USAGE.STORAGE | USAGE.COPY_SRC;',
    '  const buffers: GradientBuffers = {',
    `    q: upload('Q', ${asStored('inputs.q')}), k: upload('K', ${asStored('inputs.k')}), v: upload('V', ${asStored('inputs.v')}),`,
    `    o: upload('O', ${asStored('inputs.o')}), lse: upload('LSE', inputs.lse, USAGE.COPY_SRC), dO: upload('dO', ${asStored('inputs.dO')}),`,
    '    dq: buffer(\'dQ\', sizes.q, out), dk: buffer(\'dK\', sizes.k, out), dv: buffer(\'dV\', sizes.k, out),',
    '  };',
    ...(tables.length ? [`  const tableBuffers: ${names.tableBuffersType} = {`, ...tables.map((t) => `    ${key(t.name!)}: upload(${key(`table ${t.name}`)}, tables[${key(t.name!)}]),`), '  };'] : []),
    `  call = this.bind(buffers, shape, params${tables.length ? ', tableBuffers' : ''});`,
    '  const reads = ([[buffers.dq, sizes.q], [buffers.dk, sizes.k], [buffers.dv, sizes.k]] as const).map(([b, bytes]) => [b, buffer(`${b.label} readback`, bytes, USAGE.MAP_READ | USAGE.COPY_DST), bytes] as const);',
    '  const encoder = d.createCommandEncoder();',
    '  call.encode(encoder);',
    '  for (const [from, to] of reads) encoder.copyBufferToBuffer(from, 0, to, 0, to.size);',
    '  d.queue.submit([encoder.finish()]);',
    '  await Promise.all(reads.map(([, r]) => r.mapAsync(MAP_MODE_READ)));',
    half
      ? '  const [dq, dk, dv] = reads.map(([, r, bytes]) => fromHalves(new Uint16Array(r.getMappedRange().slice(0, bytes))));'
      : '  const [dq, dk, dv] = reads.map(([, r, bytes]) => new Float32Array(r.getMappedRange().slice(0, bytes)));',
    '  return { dq, dk, dv };',
    '} finally {',
    '  call?.destroy();',
    '  for (const b of created) b.destroy();',
    '}',
  ];

  file.addClass({
    isExported: true, name: cls,
    docs: [`The backward pass of attention ${key(m.spec)} on the GPU (dQ, dK, dV from Q, K, V, the forward call's O and LSE, and dO): create() once per device, then run() (arrays in, arrays out) or bind() + encode() (your buffers, your command encoder). Gradients of params and tables are not computed.`],
    properties: [
      { name: 'headDim', isStatic: true, isReadonly: true, initializer: `${D}` },
      { name: 'dtype', isStatic: true, isReadonly: true, initializer: key(m.dtype) },
    ],
    ctors: [{
      scope: Scope.Private,
      parameters: [
        { name: 'device', type: 'GPUDevice', isReadonly: true, scope: Scope.Public },
        { name: 'stages', type: '{ pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }[]', isReadonly: true, scope: Scope.Private },
      ],
    }],
    methods: [
      {
        name: 'create', isStatic: true, isAsync: true, returnType: `Promise<${cls}>`,
        docs: [`Compiles the kernels for \`device\`; throws with the WGSL compiler's messages if the device refuses them.${storage > 8 ? ` The device needs maxStorageBuffersPerShaderStage >= ${storage} (the default is 8).` : ''}`],
        parameters: [{ name: 'device', type: 'GPUDevice' }],
        statements: create,
      },
      {
        name: 'byteSizes', isStatic: true,
        returnType: '{ q: number; k: number; lse: number }',
        docs: ['Bytes of the buffers of a shape: Q, O, dO and dQ (q); K, V, dK and dV (k); LSE (before any rounding up).'],
        parameters: [{ name: 'shape', type: 'AttentionShape' }],
        statements: [`return { q: shape.B * shape.Hq * shape.Nq * ${D} * ${bytesPerElem}, k: shape.B * shape.Hkv * shape.Nk * ${D} * ${bytesPerElem}, lse: shape.B * shape.Hq * shape.Nq * 4 };`],
      },
      {
        name: 'bind',
        docs: ['Binds one backward call: checks the shape and params, writes them into a uniform buffer, makes the delta buffer and the bind groups.'],
        parameters: [
          { name: 'buffers', type: 'GradientBuffers' },
          { name: 'shape', type: 'AttentionShape' },
          { name: 'params', type: `${names.paramsType} | undefined`, initializer: 'undefined' },
          ...(tables.length ? [{ name: 'tableBuffers', type: names.tableBuffersType }] : []),
        ],
        returnType: 'BoundBackwardCall',
        statements: bind,
      },
      {
        name: 'run', isAsync: true,
        docs: [`Uploads the inputs (f32 arrays${half ? ', stored as f16' : ''}), runs both stages, and reads dQ, dK, dV back (f32); frees what it created.`],
        parameters: [
          { name: 'inputs', type: '{ readonly q: Float32Array; readonly k: Float32Array; readonly v: Float32Array; readonly o: Float32Array; readonly lse: Float32Array; readonly dO: Float32Array }' },
          { name: 'shape', type: 'AttentionShape' },
          { name: 'params', type: `${names.paramsType} | undefined`, initializer: 'undefined' },
          ...(tables.length ? [{ name: 'tables', type: names.tablesType }] : []),
        ],
        returnType: 'Promise<{ dq: Float32Array; dk: Float32Array; dv: Float32Array }>',
        statements: run,
      },
    ],
  });

  file.addFunction({
    name: 'checkShape', returnType: 'void',
    parameters: [{ name: 'shape', type: 'AttentionShape' }, { name: 'maxWorkgroups', type: 'number' }],
    statements: [
      'for (const k of [\'B\', \'Hq\', \'Hkv\', \'Nq\', \'Nk\'] as const) {',
      `  if (!Number.isInteger(shape[k]) || shape[k] < 1 || shape[k] > 0x7fffffff) throw new RangeError(\`attention ${m.spec} backward: \${k} must be a positive 32-bit integer, got \${shape[k]}\`);`,
      '}',
      `if (shape.Hq % shape.Hkv !== 0) throw new RangeError(\`attention ${m.spec} backward: Hq (\${shape.Hq}) must be a multiple of Hkv (\${shape.Hkv})\`);`,
      `for (const grid of [${abi.stages.map((s) => `[${gridOf(s.dispatch)}]`).join(', ')}]) {`,
      `  if (grid.some((g) => g > maxWorkgroups)) throw new RangeError(\`attention ${m.spec} backward: \${grid.join(' x ')} workgroups exceed this device's maxComputeWorkgroupsPerDimension (\${maxWorkgroups}); split the call\`);`,
      '}',
    ],
  });
  await addHelpers(file, m, half);
  file.formatText({ indentSize: 2, convertTabsToSpaces: true });
  return file.getFullText();
}
