// Bindings to the CUDA driver API (libcuda) and NVRTC (libnvrtc) through
// koffi: no native build step. Only the few functions the backend needs.
// Every driver call goes through `check`, which turns a CUresult into a
// DeviceError named by cuGetErrorName (CUDA_ERROR_OUT_OF_MEMORY, ...).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { DeviceError, NoDeviceError } from './device.ts';

type Fn = (...args: unknown[]) => unknown;

function tryLoad(candidates: string[]): { lib: ReturnType<typeof koffi.load>; path: string } | null {
  for (const path of candidates) {
    try {
      return { lib: koffi.load(path), path };
    } catch {
      // not this one
    }
  }
  return null;
}

const envDirs = () => [process.env.CUDA_HOME, process.env.CUDA_PATH].filter((d): d is string => !!d);

/** Newest-looking `prefix*` files in `dirs`, e.g. libnvrtc.so.13.0.88. */
function globLibs(dirs: string[], prefix: string): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    try {
      const names = readdirSync(d).filter((n) => n.startsWith(prefix) && !n.includes('alt') && !n.includes('builtins'));
      names.sort().reverse();
      out.push(...names.map((n) => join(d, n)));
    } catch {
      // unreadable folder
    }
  }
  return out;
}

export interface CudaLibs {
  cu: Record<string, Fn>;
  nvrtc: Record<string, Fn>;
  cudaPath: string;
  nvrtcPath: string;
}

let cached: CudaLibs | null = null;

export function loadCudaLibs(): CudaLibs {
  if (cached) return cached;
  const driverDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/local/nvidia/lib64', '/usr/lib64', '/usr/local/cuda/compat', ...envDirs().map((d) => join(d, 'compat'))];
  const cuda = tryLoad(['libcuda.so.1', 'libcuda.so', ...driverDirs.flatMap((d) => [join(d, 'libcuda.so.1'), join(d, 'libcuda.so')])]);
  if (!cuda) throw new NoDeviceError('no CUDA driver: libcuda.so.1 not found (loader path, /usr/lib/x86_64-linux-gnu, /usr/local/nvidia/lib64, CUDA_HOME/compat)');
  const toolDirs = [...envDirs().map((d) => join(d, 'lib64')), '/usr/local/cuda/lib64', '/usr/local/cuda/targets/x86_64-linux/lib', '/usr/lib/x86_64-linux-gnu'];
  const nvrtc = tryLoad([...toolDirs.map((d) => join(d, 'libnvrtc.so')), 'libnvrtc.so', ...globLibs(toolDirs, 'libnvrtc.so.')]);
  if (!nvrtc) throw new NoDeviceError('no NVRTC: libnvrtc.so not found (CUDA_HOME/lib64, CUDA_PATH/lib64, /usr/local/cuda/lib64, loader path)');

  const CUctx = koffi.pointer('CUcontext', koffi.opaque());
  const CUmod = koffi.pointer('CUmodule', koffi.opaque());
  const CUfn = koffi.pointer('CUfunction', koffi.opaque());
  const CUev = koffi.pointer('CUevent', koffi.opaque());
  const Prog = koffi.pointer('nvrtcProgram', koffi.opaque());
  void CUctx; void CUmod; void CUfn; void CUev; void Prog;
  const c = cuda.lib;
  const cu: Record<string, Fn> = {
    cuInit: c.func('int cuInit(unsigned int flags)'),
    cuDeviceGetCount: c.func('int cuDeviceGetCount(_Out_ int *count)'),
    cuDeviceGet: c.func('int cuDeviceGet(_Out_ int *dev, int ordinal)'),
    cuDeviceGetName: c.func('int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)'),
    cuDeviceGetAttribute: c.func('int cuDeviceGetAttribute(_Out_ int *value, int attrib, int dev)'),
    cuDriverGetVersion: c.func('int cuDriverGetVersion(_Out_ int *version)'),
    cuDevicePrimaryCtxRetain: c.func('int cuDevicePrimaryCtxRetain(_Out_ CUcontext *ctx, int dev)'),
    cuDevicePrimaryCtxRelease: c.func('int cuDevicePrimaryCtxRelease_v2(int dev)'),
    cuCtxSetCurrent: c.func('int cuCtxSetCurrent(CUcontext ctx)'),
    cuCtxSynchronize: c.func('int cuCtxSynchronize()'),
    cuMemAlloc: c.func('int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)'),
    cuMemFree: c.func('int cuMemFree_v2(uint64_t dptr)'),
    cuMemGetInfo: c.func('int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)'),
    cuMemcpyHtoD: c.func('int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)'),
    cuMemcpyDtoH: c.func('int cuMemcpyDtoH_v2(_Out_ uint8_t *dst, uint64_t src, size_t bytes)'),
    cuMemsetD8: c.func('int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t n)'),
    cuModuleLoadData: c.func('int cuModuleLoadData(_Out_ CUmodule *mod, const void *image)'),
    cuModuleUnload: c.func('int cuModuleUnload(CUmodule mod)'),
    cuModuleGetFunction: c.func('int cuModuleGetFunction(_Out_ CUfunction *fn, CUmodule mod, const char *name)'),
    cuFuncSetAttribute: c.func('int cuFuncSetAttribute(CUfunction fn, int attrib, int value)'),
    cuLaunchKernel: c.func('int cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem, void *stream, void **params, void **extra)'),
    cuEventCreate: c.func('int cuEventCreate(_Out_ CUevent *ev, unsigned int flags)'),
    cuEventRecord: c.func('int cuEventRecord(CUevent ev, void *stream)'),
    cuEventSynchronize: c.func('int cuEventSynchronize(CUevent ev)'),
    cuEventElapsedTime: c.func('int cuEventElapsedTime(_Out_ float *ms, CUevent start, CUevent end)'),
    cuEventDestroy: c.func('int cuEventDestroy_v2(CUevent ev)'),
    cuGetErrorName: c.func('int cuGetErrorName(int err, _Out_ const char **name)'),
  };
  const n = nvrtc.lib;
  const rtc: Record<string, Fn> = {
    nvrtcVersion: n.func('int nvrtcVersion(_Out_ int *major, _Out_ int *minor)'),
    nvrtcCreateProgram: n.func('int nvrtcCreateProgram(_Out_ nvrtcProgram *prog, const char *src, const char *name, int numHeaders, const char **headers, const char **includeNames)'),
    nvrtcCompileProgram: n.func('int nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char **options)'),
    nvrtcGetProgramLogSize: n.func('int nvrtcGetProgramLogSize(nvrtcProgram prog, _Out_ size_t *size)'),
    nvrtcGetProgramLog: n.func('int nvrtcGetProgramLog(nvrtcProgram prog, _Out_ uint8_t *log)'),
    nvrtcGetCUBINSize: n.func('int nvrtcGetCUBINSize(nvrtcProgram prog, _Out_ size_t *size)'),
    nvrtcGetCUBIN: n.func('int nvrtcGetCUBIN(nvrtcProgram prog, _Out_ uint8_t *cubin)'),
    nvrtcDestroyProgram: n.func('int nvrtcDestroyProgram(_Inout_ nvrtcProgram *prog)'),
    nvrtcGetErrorString: n.func('const char *nvrtcGetErrorString(int result)'),
  };
  cached = { cu, nvrtc: rtc, cudaPath: cuda.path, nvrtcPath: nvrtc.path };
  return cached;
}

/** Throws a DeviceError named like CUDA_ERROR_OUT_OF_MEMORY when a driver call fails. */
export function check(libs: CudaLibs, result: unknown, what: string): void {
  const code = result as number;
  if (code === 0) return;
  const out: [string | null] = [null];
  let name = `CUDA_ERROR_${code}`;
  try {
    if (libs.cu.cuGetErrorName(code, out) === 0 && out[0]) name = out[0];
  } catch {
    // keep the number
  }
  throw new DeviceError(name, `${what} failed`);
}

export function checkNvrtc(libs: CudaLibs, result: unknown, what: string, log = ''): void {
  const code = result as number;
  if (code === 0) return;
  const msg = String(libs.nvrtc.nvrtcGetErrorString(code) ?? `NVRTC error ${code}`);
  throw new DeviceError(msg, `${what} failed${log ? `:\n${log}` : ''}`);
}
