// The `torch` backend: runs a CUDA kernel through the module `--target torch` makes of it, called from PyTorch in
// a Python worker (src/runtime/torch_worker.py; ATTNC_PYTHON, else python3), so `attnc check --backend torch`, the
// differential fuzzer and tests/torch test the module a PyTorch user imports, not only its kernel. Inputs and
// outputs cross as .npy files in a temporary folder; requests and replies as JSON lines.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { CompiledKernel, StorageDType } from '../compiler/manifest.ts';
import { torchModule, torchModuleName } from '../compiler/render/torch.ts';
import { VERSION } from '../version.ts';
import { backwardTuningFromEnv, DeviceError, NoDeviceError, type AttentionCall, type AttentionGradients, type AttentionResult, type BackwardInputs, type Backend, type Codegen, type DeviceLimits } from './device.ts';
import { readNpy, toFloat32, writeNpy } from './npy.ts';

interface Hello { ok: boolean; why?: string; name?: string; cc?: [number, number]; torch?: string; smemOptin?: number }
interface Reply { ok: boolean; error?: string }

const WORKER = fileURLToPath(new URL('./torch_worker.py', import.meta.url));

export async function openTorchModuleBackend(): Promise<Backend> {
  const python = process.env.ATTNC_PYTHON ?? 'python3';
  const proc = spawn(python, ['-u', WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: proc.stdout });
  // Replies come in request order: each waiting request takes the next line; if the worker dies, all of them fail.
  const pending: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  let stderr = '';
  let dead: Error | null = null;
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  lines.on('line', (line) => pending.shift()?.resolve(line));
  proc.on('exit', (code, signal) => {
    dead = new DeviceError('ATTNC_TORCH_WORKER', `the Python worker exited (${signal ?? code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    for (const p of pending.splice(0)) p.reject(dead);
  });
  const next = () => new Promise<string>((resolve, reject) => (dead ? reject(dead) : pending.push({ resolve, reject })));
  const started = await new Promise<Hello>((resolve, reject) => {
    proc.once('error', (e) => reject(new NoDeviceError(`no Python for the torch backend: ${python}: ${e.message} (ATTNC_PYTHON picks another)`)));
    next().then((l) => resolve(JSON.parse(l) as Hello), reject);
  }).catch((e: Error) => {
    proc.kill();
    throw e instanceof NoDeviceError ? e : new NoDeviceError(`the torch backend did not start: ${e.message}`);
  });
  if (!started.ok) {
    proc.kill();
    throw new NoDeviceError(`no CUDA device for the torch backend: ${started.why}`);
  }
  return new TorchModuleBackend(proc, next, started);
}

class TorchModuleBackend implements Backend {
  readonly name = 'torch' as const;
  private readonly dir = mkdtempSync(join(tmpdir(), 'attnc-torch-'));
  private readonly modules = new Map<string, string>();
  /** The forward kernel last run per spec, dtype and head dim: the module a backward call extends. */
  private readonly forwards = new Map<string, CompiledKernel>();
  private calls = 0;

  constructor(private readonly proc: ChildProcessWithoutNullStreams, private readonly next: () => Promise<string>, private readonly info: Hello) {}

  describe(): string {
    const [maj, min] = this.info.cc!;
    return `PyTorch ${this.info.torch} module (--target torch) on ${this.info.name} (compute ${maj}.${min})`;
  }

  limits(): DeviceLimits {
    return {
      maxWorkgroupStorageBytes: this.info.smemOptin!, maxInvocationsPerWorkgroup: 1024, maxWorkgroupSizeX: 1024,
      maxStorageBufferBindingSize: 2 ** 40, maxBufferSize: 2 ** 40, maxComputeWorkgroupsPerDimension: 65535,
    };
  }

  /** The kernel the module picks on this GPU: Hopper's sm_90a one on compute 9.0, else the sm_80 one. */
  codegen(): Codegen {
    const [maj, min] = this.info.cc!;
    return { target: 'cuda', arch: maj === 9 && min === 0 ? 'sm_90a' : 'sm_80', ...backwardTuningFromEnv() };
  }

  dtypes(): StorageDType[] {
    return this.info.cc![0] >= 8 ? ['f32', 'f16', 'bf16'] : ['f32'];
  }

  async run(kernel: CompiledKernel, call: AttentionCall): Promise<AttentionResult> {
    const m = kernel.manifest;
    if (call.D !== m.headDim) throw new DeviceError('ATTNC_BAD_SHAPE', `kernel was compiled for head_dim ${m.headDim}, call has ${call.D}`);
    this.forwards.set(`${m.spec}|${m.dtype}|${m.headDim}`, kernel);
    const dir = await this.writeCall(kernel, call);
    const o = toFloat32(readNpy(readFileSync(join(dir, 'o.npy')), 'o.npy'));
    const lse = toFloat32(readNpy(readFileSync(join(dir, 'lse.npy')), 'lse.npy'));
    rmSync(dir, { recursive: true, force: true });
    return { o, lse };
  }

  /**
   * dQ, dK, dV through the module's autograd, as a PyTorch user gets them: the module (of the forward kernel this
   * backend last ran for the spec, dtype and head dim, with these backward kernels) runs its own forward with
   * gradients on, then o.backward(dO). `inputs.o` and `inputs.lse` are not used: the module keeps its own.
   */
  async backward(kernel: CompiledKernel, call: AttentionCall, inputs: BackwardInputs): Promise<AttentionGradients> {
    const m = kernel.manifest;
    const forward = this.forwards.get(`${m.spec}|${m.dtype}|${m.headDim}`);
    if (!forward) throw new Error(`backward(): run the forward kernel of ${m.spec} (${m.dtype}, head_dim ${m.headDim}) on this backend first`);
    const dir = await this.writeCall(forward, call, { backward: kernel, dO: inputs.dO });
    const read = (name: string) => toFloat32(readNpy(readFileSync(join(dir, name)), name));
    const grads = { dq: read('dq.npy'), dk: read('dk.npy'), dv: read('dv.npy') };
    rmSync(dir, { recursive: true, force: true });
    return grads;
  }

  /** Writes a call's inputs, sends the request and waits for the worker's reply; returns the folder with its outputs. */
  private async writeCall(kernel: CompiledKernel, call: AttentionCall, grad?: { backward: CompiledKernel; dO: Float32Array }): Promise<string> {
    const m = kernel.manifest;
    const module = this.module(kernel, grad?.backward ?? null);
    const dir = join(this.dir, `call${this.calls++}`);
    mkdirSync(dir);
    const { B, Hq, Hkv, Nq, Nk, D } = call;
    if (grad) writeFileSync(join(dir, 'do.npy'), writeNpy(grad.dO, [B, Hq, Nq, D]));
    writeFileSync(join(dir, 'q.npy'), writeNpy(call.q, [B, Hq, Nq, D]));
    writeFileSync(join(dir, 'k.npy'), writeNpy(call.k, [B, Hkv, Nk, D]));
    writeFileSync(join(dir, 'v.npy'), writeNpy(call.v, [B, Hkv, Nk, D]));
    const tables = m.inputs.map((t) => t.name);
    tables.forEach((name, i) => {
      const t = call.tables[name];
      if (!t) throw new DeviceError('ATTNC_MISSING_INPUT', `table '${name}' was not given`);
      writeFileSync(join(dir, `t${i}.npy`), writeNpy(t, [t.length]));
    });
    const params = Object.fromEntries(m.params.map((p) => [p.name, call.params[p.name] ?? p.default]));
    const answer = this.next();
    this.proc.stdin.write(JSON.stringify({ module, dir, params, tables, backward: !!grad }) + '\n');
    const reply = JSON.parse(await answer) as Reply;
    if (!reply.ok) throw new DeviceError('ATTNC_TORCH', reply.error ?? 'the module failed');
    return dir;
  }

  /** The module file of this kernel (and backward kernels), written once per pair of sources. */
  private module(kernel: CompiledKernel, backward: CompiledKernel | null): string {
    const key = `${kernel.manifest.hash}\n${kernel.source}\n${backward?.source ?? ''}`;
    const hit = this.modules.get(key);
    if (hit) return hit;
    const m = kernel.manifest;
    const path = join(this.dir, `${torchModuleName(m.spec, m.dtype, m.headDim)}_${this.modules.size}.py`);
    writeFileSync(path, torchModule([kernel], `${m.hash}_${this.modules.size}`, VERSION, backward ? [backward] : null));
    this.modules.set(key, path);
    return path;
  }

  dispose(): void {
    this.proc.stdin.end();
    this.proc.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
