// The Node-only part of the WebGPU runtime: Dawn through the `webgpu` package.
// webgpu.ts itself only uses the standard API, so it also runs in a browser
// with `navigator.gpu`.
import { create, globals } from 'webgpu';

let gpu: GPU | undefined;

/** Dawn's GPU object (one per process), with the WebGPU globals (GPUBufferUsage, ...) installed. */
export function nodeGpu(): GPU {
  if (!gpu) {
    // Dawn's Vulkan loader warns when XDG_RUNTIME_DIR is unset; it is harmless.
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    Object.assign(globalThis, globals);
    gpu = create([]);
  }
  return gpu;
}
