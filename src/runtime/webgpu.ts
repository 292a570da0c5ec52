// The WebGPU backend, written against the standard GPUDevice API only (Dawn
// in Node through webgpu-node.ts, or `navigator.gpu` in a browser). It reads
// the kernel's manifest (`abi`, see compiler/render/wgsl-abi.ts), never the
// compiler's internals.
import type { CompiledKernel, StorageDType } from '../compiler/manifest.ts';
import { bindingType, type WgslAbi, type WgslBinding } from '../compiler/render/wgsl-abi.ts';
import type { WgslBackwardAbi } from '../compiler/render/wgsl-bwd-abi.ts';
import { DeviceError, NoDeviceError, type AttentionCall, type AttentionGradients, type AttentionResult, type BackwardInputs, type Backend, type Codegen, type DeviceLimits } from './device.ts';
import { fromF16Array, toF16Array } from './half.ts';
import { own } from '../compiler/own.ts';

export interface OpenWebGpuOptions {
  adapter?: GPUAdapter;
  powerPreference?: GPUPowerPreference;
  /** The GPU object to use; default `navigator.gpu`, else Dawn in Node. */
  gpu?: GPU;
}

/** Limits we ask for: as much as the adapter offers (tile sizes and problem sizes grow with them). */
const WANTED_LIMITS = [
  'maxComputeWorkgroupStorageSize', 'maxStorageBufferBindingSize', 'maxBufferSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

async function defaultGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const { nodeGpu } = await import('./webgpu-node.ts');
  return nodeGpu();
}

export async function openWebGpu(opts: OpenWebGpuOptions = {}): Promise<Backend> {
  const { device, description } = await requestWebGpuDevice(opts);
  return new WebGpuBackend(device, description);
}

/** A device with as much of the adapter's limits as the kernels can use, and a line naming the adapter. */
export async function requestWebGpuDevice(opts: OpenWebGpuOptions = {}): Promise<{ device: GPUDevice; description: string }> {
  let adapter = opts.adapter ?? null;
  if (!adapter) {
    const gpu = opts.gpu ?? await defaultGpu();
    adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  }
  if (!adapter) throw new NoDeviceError('no WebGPU adapter found');
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredLimits });
  const info = adapter.info;
  const description = [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(' / ') || 'unknown WebGPU adapter';
  return { device, description };
}

type Pipeline = { source: string; pipeline: GPUComputePipeline };

/** What every backend on a WebGPU device shares: WGSL sized by the device's limits, f32 and f16 storage. */
export abstract class WebGpuDeviceBackend {
  constructor(protected readonly device: GPUDevice, protected readonly description: string) {}

  codegen(): Codegen {
    return { target: 'wgsl' };
  }

  /** The limits the compiler sizes WGSL kernels by. */
  limits(): DeviceLimits {
    const l = this.device.limits;
    return {
      maxWorkgroupStorageBytes: l.maxComputeWorkgroupStorageSize,
      maxInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    };
  }

  dtypes(): StorageDType[] {
    return ['f32', 'f16'];
  }
}

class WebGpuBackend extends WebGpuDeviceBackend implements Backend {
  readonly name = 'webgpu' as const;
  private readonly pipelines = new Map<string, Pipeline>();
  private lost: string | null = null;

  constructor(device: GPUDevice, description: string) {
    super(device, description);
    device.lost.then((info) => { this.lost = `${info.reason}: ${info.message}`; });
  }

  describe(): string {
    return `WebGPU: ${this.description}`;
  }

  dispose(): void {
    this.pipelines.clear();
    this.device.destroy();
  }

  async run(kernel: CompiledKernel, call: AttentionCall): Promise<AttentionResult> {
    this.checkAlive();
    const m = kernel.manifest;
    if (m.target !== 'wgsl') throw new DeviceError('WrongTarget', `the WebGPU backend runs WGSL kernels, got a ${m.target} kernel`);
    const abi = m.abi as unknown as WgslAbi;
    const dtype = m.dtype;
    if (dtype !== 'f32' && dtype !== 'f16') throw new DeviceError('UnsupportedDType', `WebGPU kernels store f32 or f16, not ${dtype}`);
    checkCall(call, m.headDim);
    const grid = this.grid(call, abi.dispatch.bm);
    const pipeline = await this.pipeline(kernel);

    const created: GPUBuffer[] = [];
    const d = this.device;
    try {
      const { buffer, input } = this.allocator(created);
      const toStorage = (x: Float32Array) => (dtype === 'f32' ? x : toF16Array(x));
      const oElems = call.B * call.Hq * call.Nq * call.D;
      const oBytes = oElems * (dtype === 'f32' ? 4 : 2);
      const lseBytes = call.B * call.Hq * call.Nq * 4;

      checkTables(abi.bindings, call);
      const [oRead, lseRead] = await withScopes(d, 'dispatch', async () => {
      const byRole: Record<string, GPUBuffer> = {
        uniform: buffer('uniforms', abi.uniform.size, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
        q: input('Q', toStorage(call.q)),
        k: input('K', toStorage(call.k)),
        v: input('V', toStorage(call.v)),
        o: buffer('O', oBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC),
        lse: buffer('LSE', lseBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC),
      };
      d.queue.writeBuffer(byRole.uniform, 0, uniformBytes(abi, call));
      const entries: GPUBindGroupEntry[] = abi.bindings.map((b) => {
        let buf = byRole[b.role];
        if (b.role === 'table') {
          const t = own(call.tables, b.name!)!;
          buf = input(`table ${b.name}`, b.elem === 'i32' ? Int32Array.from(t) : Float32Array.from(t));
        }
        return { binding: b.binding, resource: { buffer: buf } };
      });
      const oRead = buffer('O readback', oBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      const lseRead = buffer('LSE readback', lseBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      const bindGroup = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
      pass.end();
      enc.copyBufferToBuffer(byRole.o, 0, oRead, 0, oRead.size);
      enc.copyBufferToBuffer(byRole.lse, 0, lseRead, 0, lseRead.size);
      d.queue.submit([enc.finish()]);
      return [oRead, lseRead];
      });

      const [o, lse] = await this.readBack([{ buffer: oRead, bytes: oBytes, half: dtype === 'f16' }, { buffer: lseRead, bytes: lseBytes, half: false }]);
      return { o, lse };
    } finally {
      for (const b of created) b.destroy();
    }
  }

  async backward(kernel: CompiledKernel, call: AttentionCall, inputs: BackwardInputs): Promise<AttentionGradients> {
    this.checkAlive();
    const m = kernel.manifest;
    if (m.target !== 'wgsl' || m.pass !== 'backward') {
      throw new DeviceError('WrongTarget', `the WebGPU backward pass runs WGSL backward kernels, got a ${m.target} ${m.pass ?? 'forward'} kernel`);
    }
    const abi = m.abi as unknown as WgslBackwardAbi;
    const dtype = m.dtype;
    if (dtype !== 'f32' && dtype !== 'f16') throw new DeviceError('UnsupportedDType', `WebGPU kernels store f32 or f16, not ${dtype}`);
    checkCall(call, m.headDim);
    const rows = call.B * call.Hq * call.Nq;
    if (inputs.o.length !== rows * call.D || inputs.dO.length !== rows * call.D) throw new DeviceError('InvalidCall', 'O and dO must hold B*Hq*Nq*D values');
    if (inputs.lse.length !== rows) throw new DeviceError('InvalidCall', 'LSE must hold B*Hq*Nq values');
    checkTables(abi.bindings, call);
    const stages: Array<{ bindings: WgslBinding[]; grid: [number, number, number]; pipeline: GPUComputePipeline }> = [];
    for (const stage of abi.stages) {
      const bindings = abi.bindings.filter((b) => stage.bindings.includes(b.binding));
      const storage = bindings.filter((b) => b.role !== 'uniform').length;
      const max = this.device.limits.maxStorageBuffersPerShaderStage;
      if (storage > max) throw new DeviceError('TooManyBuffers', `${stage.entryPoint} binds ${storage} storage buffers; this device allows ${max} per shader stage`);
      const grid = this.dispatchOf(stage.dispatch, call);
      stages.push({ bindings, grid, pipeline: await this.pipeline(kernel, stage.entryPoint, bindings) });
    }

    const created: GPUBuffer[] = [];
    const d = this.device;
    try {
      const { buffer, input } = this.allocator(created);
      const toStorage = (x: Float32Array) => (dtype === 'f32' ? x : toF16Array(x));
      const elem = dtype === 'f32' ? 4 : 2;
      const qBytes = rows * call.D * elem, kvBytes = call.B * call.Hkv * call.Nk * call.D * elem;
      const out = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
      const reads = await withScopes(d, 'dispatch', async () => {
        const byRole: Record<string, GPUBuffer> = {
          uniform: buffer('uniforms', abi.uniform.size, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
          q: input('Q', toStorage(call.q)), k: input('K', toStorage(call.k)), v: input('V', toStorage(call.v)),
          o: input('O', toStorage(inputs.o)), do: input('dO', toStorage(inputs.dO)),
          // LSE in the first half; the first stage writes delta into the second.
          stats: buffer('stats', 2 * rows * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST),
          dq: buffer('dQ', qBytes, out), dk: buffer('dK', kvBytes, out), dv: buffer('dV', kvBytes, out),
        };
        d.queue.writeBuffer(byRole.uniform, 0, uniformBytes(abi, call));
        d.queue.writeBuffer(byRole.stats, 0, inputs.lse.buffer, inputs.lse.byteOffset, inputs.lse.byteLength);
        for (const b of abi.bindings) {
          if (b.role !== 'table') continue;
          const t = own(call.tables, b.name!)!;
          byRole[`table ${b.binding}`] = input(`table ${b.name}`, b.elem === 'i32' ? Int32Array.from(t) : Float32Array.from(t));
        }
        const bufferOf = (b: WgslBinding) => byRole[b.role === 'table' ? `table ${b.binding}` : b.role];
        const enc = d.createCommandEncoder();
        const pass = enc.beginComputePass();
        // One pass: WebGPU orders the dispatches and makes stage 1's delta visible to stage 2.
        for (const s of stages) {
          pass.setPipeline(s.pipeline);
          pass.setBindGroup(0, d.createBindGroup({ layout: s.pipeline.getBindGroupLayout(0), entries: s.bindings.map((b) => ({ binding: b.binding, resource: { buffer: bufferOf(b) } })) }));
          pass.dispatchWorkgroups(...s.grid);
        }
        pass.end();
        const reads = (['dq', 'dk', 'dv'] as const).map((role) => {
          const r = buffer(`${role} readback`, byRole[role].size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
          enc.copyBufferToBuffer(byRole[role], 0, r, 0, r.size);
          return r;
        });
        d.queue.submit([enc.finish()]);
        return reads;
      });
      const [dq, dk, dv] = await this.readBack(reads.map((buffer, i) => ({ buffer, bytes: i === 0 ? qBytes : kvBytes, half: dtype === 'f16' })));
      return { dq, dk, dv };
    } finally {
      for (const b of created) b.destroy();
    }
  }

  /** Maps readback buffers and returns the first `bytes` of each as f32 (f16 storage widened). */
  private async readBack(reads: Array<{ buffer: GPUBuffer; bytes: number; half: boolean }>): Promise<Float32Array[]> {
    await Promise.all(reads.map((r) => r.buffer.mapAsync(GPUMapMode.READ))).catch((e) => {
      this.checkAlive();
      throw new DeviceError('GPUMapError', `reading the results back failed: ${String(e)}`);
    });
    return reads.map((r) => {
      const raw = r.buffer.getMappedRange().slice(0, r.bytes);
      return r.half ? fromF16Array(new Uint16Array(raw)) : new Float32Array(raw);
    });
  }

  /** Buffer makers that record what they create (destroyed by the caller) and check sizes against the device. */
  private allocator(created: GPUBuffer[]) {
    const d = this.device;
    const buffer = (label: string, size: number, usage: number): GPUBuffer => {
      this.checkSize(label, size);
      const b = d.createBuffer({ label, size: Math.max(16, Math.ceil(size / 16) * 16), usage });
      created.push(b);
      return b;
    };
    const input = (label: string, data: ArrayBufferView): GPUBuffer => {
      const b = buffer(label, data.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      d.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
      return b;
    };
    return { buffer, input };
  }

  /** A stage's workgroup counts from its dispatch formulas (`ceil(Nq / 16)`, `Hq`, ...). */
  private dispatchOf(dispatch: { x: string; y: string; z: string }, call: AttentionCall): [number, number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    const grid = [dispatch.x, dispatch.y, dispatch.z].map((formula, axis) => {
      const m = /^ceil\((B|Hq|Hkv|Nq|Nk) \/ (\d+)\)$/.exec(formula);
      const n = m ? Math.ceil(call[m[1] as 'Nq'] / Number(m[2])) : call[formula as 'B'];
      if (!Number.isInteger(n)) throw new DeviceError('InvalidManifest', `dispatch formula '${formula}' is not one this runtime knows`);
      if (n > max) throw new DeviceError('GridTooLarge', `dispatch ${formula} = ${n} exceeds maxComputeWorkgroupsPerDimension ${max} in ${'xyz'[axis]}; split the call`);
      return n;
    });
    return grid as [number, number, number];
  }

  private checkAlive(): void {
    if (this.lost !== null) throw new DeviceError('GPUDeviceLost', `the WebGPU device was lost (${this.lost})`);
  }

  private checkSize(label: string, bytes: number): void {
    const l = this.device.limits;
    const max = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize);
    if (bytes > max) {
      throw new DeviceError('BufferTooLarge', `${label} needs ${bytes} bytes; this device binds at most ${max} bytes per buffer (maxStorageBufferBindingSize ${l.maxStorageBufferBindingSize}, maxBufferSize ${l.maxBufferSize})`);
    }
  }

  private grid(call: AttentionCall, bm: number): [number, number, number] {
    const grid: [number, number, number] = [Math.ceil(call.Nq / bm), call.Hq, call.B];
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    const over = grid.findIndex((g) => g > max);
    if (over >= 0) {
      throw new DeviceError('GridTooLarge', `dispatch (${grid.join(', ')}) exceeds maxComputeWorkgroupsPerDimension ${max} in ${'xyz'[over]} (${['ceil(Nq / ' + bm + ')', 'Hq', 'B'][over]}); split the call`);
    }
    return grid;
  }

  /** The compute pipeline of a kernel's entry point, compiled once per manifest hash. */
  private async pipeline(kernel: CompiledKernel, entryPoint = kernel.manifest.entryPoint,
    bindings = (kernel.manifest.abi as unknown as WgslAbi).bindings): Promise<GPUComputePipeline> {
    const key = `${kernel.manifest.hash}:${entryPoint}`;
    const hit = this.pipelines.get(key);
    if (hit && hit.source === kernel.source) return hit.pipeline;
    const d = this.device;
    let errors: string[] = [];
    const pipeline = await withScopes(d, 'pipeline creation', async () => {
      const module = d.createShaderModule({ label: kernel.manifest.spec, code: kernel.source });
      const info = await module.getCompilationInfo();
      errors = info.messages.filter((msg) => msg.type === 'error').map((e) => `${e.lineNum}:${e.linePos} ${e.message}`);
      return d.createComputePipeline({ label: kernel.manifest.spec, layout: explicitLayout(d, bindings), compute: { module, entryPoint } });
    }, () => errors);
    this.pipelines.set(key, { source: kernel.source, pipeline });
    return pipeline;
  }
}

/**
 * The bind group layout from the manifest's bindings, not 'auto': an 'auto'
 * layout drops bindings the shader never reads (a declared but unused
 * `input`), and binding every table the manifest lists then fails
 * validation (found by the differential fuzzer, src/fuzz/).
 */
function explicitLayout(d: GPUDevice, bindings: WgslBinding[]): GPUPipelineLayout {
  const entries = bindings.map((b) => ({ binding: b.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: bindingType(b) } }));
  return d.createPipelineLayout({ bindGroupLayouts: [d.createBindGroupLayout({ entries })] });
}

/**
 * Runs `fn` inside validation, out-of-memory and internal error scopes and
 * throws the first GPU error as a DeviceError named after its type. The
 * scopes are popped even when `fn` throws, so the stack never leaks.
 */
async function withScopes<T>(d: GPUDevice, what: string, fn: () => Promise<T>, details: () => string[] = () => []): Promise<T> {
  d.pushErrorScope('validation');
  d.pushErrorScope('out-of-memory');
  d.pushErrorScope('internal');
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    for (let i = 0; i < 3; i++) await d.popErrorScope().catch(() => null);
    throw e;
  }
  const errors = [await d.popErrorScope(), await d.popErrorScope(), await d.popErrorScope()].filter((e): e is GPUError => e !== null);
  if (errors.length) {
    const e = errors[0];
    const lines = details();
    const extra = lines.length ? `\n${lines.join('\n')}` : '';
    throw new DeviceError(e.constructor?.name && e.constructor.name !== 'Object' ? e.constructor.name : 'GPUError', `${what}: ${e.message}${extra}`);
  }
  return result;
}

function checkCall(c: AttentionCall, headDim: number): void {
  const bad = (msg: string) => new DeviceError('InvalidCall', msg);
  for (const k of ['B', 'Hq', 'Hkv', 'Nq', 'Nk', 'D'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1 || c[k] > 0x7fffffff) throw bad(`${k} must be a positive 32-bit integer, got ${c[k]}`);
  }
  if (c.D !== headDim) throw bad(`the kernel was compiled for head dim ${headDim}, the call has D = ${c.D}`);
  if (c.Hq % c.Hkv !== 0) throw bad(`Hq (${c.Hq}) must be a multiple of Hkv (${c.Hkv})`);
  if (c.q.length !== c.B * c.Hq * c.Nq * c.D) throw bad('Q must hold B*Hq*Nq*D values');
  if (c.k.length !== c.B * c.Hkv * c.Nk * c.D || c.v.length !== c.k.length) throw bad('K and V must hold B*Hkv*Nk*D values');
}

/** The uniform struct: sizes, then params, at the manifest's byte offsets. */
function uniformBytes(abi: Pick<WgslAbi, 'uniform'>, c: AttentionCall): ArrayBuffer {
  const bytes = new ArrayBuffer(abi.uniform.size);
  const view = new DataView(bytes);
  for (const f of abi.uniform.fields) {
    const value = 'size' in f.source ? c[f.source.size] : own(c.params, f.source.param);
    if (value === undefined || !Number.isFinite(value) && f.type === 'i32') {
      throw new DeviceError('InvalidCall', `param ${'param' in f.source ? `'${f.source.param}'` : f.member} has no usable value`);
    }
    if (f.type === 'i32') view.setInt32(f.offset, value, true);
    else view.setFloat32(f.offset, value, true);
  }
  return bytes;
}

/** Every table a kernel binds must be in the call (named in one error before any buffer is made). */
function checkTables(bindings: readonly WgslBinding[], call: AttentionCall): void {
  for (const b of bindings) {
    if (b.role === 'table' && !own(call.tables, b.name!)) throw new DeviceError('MissingInput', `table input '${b.name}' was not given`);
  }
}
