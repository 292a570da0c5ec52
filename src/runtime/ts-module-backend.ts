// The `ts` backend: runs a WGSL kernel through the module `--target ts` makes
// of it (rendered, emitted as JavaScript, imported, and called through its own
// class on a WebGPU device), so `attnc check --backend ts` and the
// differential fuzzer test the embeddable module itself, not only its kernel.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CompiledKernel } from '../compiler/manifest.ts';
import { emitJavaScript, pascalCase, renderTsModule } from '../compiler/render/ts-module.ts';
import { renderTsBackwardModule } from '../compiler/render/ts-module-bwd.ts';
import { DeviceError, type AttentionCall, type AttentionGradients, type AttentionResult, type Backend, type BackwardInputs } from './device.ts';
import { requestWebGpuDevice, WebGpuDeviceBackend, type OpenWebGpuOptions } from './webgpu.ts';

/** What the generated classes offer (see render/ts-module.ts and ts-module-bwd.ts). */
interface ModuleKernel {
  run(inputs: { q: Float32Array; k: Float32Array; v: Float32Array }, shape: object, params: object | undefined, tables?: object): Promise<AttentionResult>;
}
interface BackwardModuleKernel {
  run(inputs: { q: Float32Array; k: Float32Array; v: Float32Array } & BackwardInputs, shape: object, params: object | undefined, tables?: object): Promise<AttentionGradients>;
}

export async function openTsModuleBackend(opts: OpenWebGpuOptions = {}): Promise<Backend> {
  const { device, description } = await requestWebGpuDevice(opts);
  return new TsModuleBackend(device, description);
}

class TsModuleBackend extends WebGpuDeviceBackend implements Backend {
  readonly name = 'ts' as const;
  private readonly dir = mkdtempSync(join(tmpdir(), 'attnc-ts-'));
  private readonly kernels = new Map<string, ModuleKernel | BackwardModuleKernel>();
  private count = 0;

  describe(): string {
    return `TypeScript module (--target ts) on WebGPU: ${this.description}`;
  }

  dispose(): void {
    this.kernels.clear();
    this.device.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async run(kernel: CompiledKernel, call: AttentionCall): Promise<AttentionResult> {
    if (call.D !== kernel.manifest.headDim) throw new DeviceError('InvalidCall', `the kernel was compiled for head dim ${kernel.manifest.headDim}, the call has D = ${call.D}`);
    const mod = await this.module(kernel) as ModuleKernel;
    const inputs = { q: call.q, k: call.k, v: call.v };
    return kernel.manifest.inputs.length ? mod.run(inputs, shapeOf(call), call.params, call.tables) : mod.run(inputs, shapeOf(call), call.params);
  }

  async backward(kernel: CompiledKernel, call: AttentionCall, grads: BackwardInputs): Promise<AttentionGradients> {
    if (kernel.manifest.pass !== 'backward') throw new DeviceError('WrongTarget', 'backward() needs a backward kernel');
    if (call.D !== kernel.manifest.headDim) throw new DeviceError('InvalidCall', `the kernel was compiled for head dim ${kernel.manifest.headDim}, the call has D = ${call.D}`);
    const mod = await this.module(kernel) as BackwardModuleKernel;
    const inputs = { q: call.q, k: call.k, v: call.v, ...grads };
    return kernel.manifest.inputs.length ? mod.run(inputs, shapeOf(call), call.params, call.tables) : mod.run(inputs, shapeOf(call), call.params);
  }

  /** The module's kernel object for this kernel: rendered, emitted and imported once per source. */
  private async module(kernel: CompiledKernel): Promise<ModuleKernel | BackwardModuleKernel> {
    const key = `${kernel.manifest.hash}\n${kernel.source}`;
    const hit = this.kernels.get(key);
    if (hit) return hit;
    const base = `m${this.count++}`;
    const backward = kernel.manifest.pass === 'backward';
    const ts = await (backward ? renderTsBackwardModule : renderTsModule)(kernel, { command: '(rendered by the ts backend)' });
    const { js } = await emitJavaScript(ts, base);
    const path = join(this.dir, `${base}.mjs`);
    writeFileSync(path, js);
    const exports = await import(pathToFileURL(path).href) as Record<string, { create(device: GPUDevice): Promise<ModuleKernel | BackwardModuleKernel> }>;
    const made = await exports[`${pascalCase(kernel.manifest.spec)}Attention${backward ? 'Backward' : ''}`].create(this.device);
    this.kernels.set(key, made);
    return made;
  }
}

function shapeOf(call: AttentionCall) {
  return { B: call.B, Hq: call.Hq, Hkv: call.Hkv, Nq: call.Nq, Nk: call.Nk };
}
