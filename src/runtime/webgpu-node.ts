// The Node-only part of the WebGPU runtime: Dawn through the `webgpu` package.
// webgpu.ts itself only uses the standard API, so it also runs in a browser
// with `navigator.gpu`.
import { create, globals } from 'webgpu';
import { withNativeStderrFiltered } from './native-stderr.ts';

/** Dawn's two lines on lavapipe, on every adapter request: its limits clamped for its own allocator, nothing the kernels use. */
const DAWN_LIMIT_CLAMP_WARNING = /^Warning: maxDynamic\w+PerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

let gpu: GPU | undefined;

/** Dawn's GPU object (one per process), with the WebGPU globals (GPUBufferUsage, ...) installed. */
export function nodeGpu(): GPU {
  if (!gpu) {
    // Dawn's Vulkan loader warns when XDG_RUNTIME_DIR is unset; it is harmless.
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    Object.assign(globalThis, globals);
    const dawn = create([]);
    const requestAdapter = dawn.requestAdapter.bind(dawn);
    dawn.requestAdapter = (options) => withNativeStderrFiltered(DAWN_LIMIT_CLAMP_WARNING, () => requestAdapter(options));
    gpu = dawn;
  }
  return gpu;
}
