#!/usr/bin/env python3
"""attnc benchmark on the GPU machine: our CUDA kernels vs FlexAttention vs SDPA.

Needs only Python with torch, numpy and cupy (for its NVRTC binding; no Node): bench/prepare.sh has
already compiled every spec into bench/build/ on the development machine.

  python3 bench/run.py --out "$OUT"            # the full table (~6-8 min on an H100)
  python3 bench/run.py --quick --out "$OUT"    # causal + scale_invariant, bf16, D 128
  filters: --specs a,b --dims 64,128 --lens 1024,4096,16384 --dtypes bf16,f16

For every dtype x D x N (B*N = 32768 tokens, H = 16) the same random inputs go
to all three; each is checked against a float64 reference on sampled rows
before it is timed (ours must be within bf16 3e-2 / f16 5e-3 max abs error,
or its time is not taken and the run exits 1). Timing: CUDA events around
each call on one stream, warm-up, median of the repeats. TFLOP/s counts
4*D FLOPs per kept (query, key) pair, the kept pairs counted exactly from the
mask for each N.

Ours: the .cu from bench/build/cuda compiled by NVRTC (cupy's binding, or
cuda-python's) for this device (sm_90a on Hopper), cubins cached on disk by
sha256(source, arch, NVRTC version), loaded and launched through the CUDA
driver API (ctypes on libcuda, in torch's context and stream) per the
manifest's ABI (argument order, block, grid formula, dynamic shared memory).
Flex: bench/build/flex/<spec>_flex.py through torch.compile(flex_attention,
dynamic=False), block mask from the module's mask_mod, recompile limits raised
and fail_on_recompile_limit_hit set so that it can never fall back to eager.
SDPA: F.scaled_dot_product_attention(is_causal=True), the roof.

Writes <out>/<gpu>-<date>.json after every row (so a run cut short still
returns what it measured) and prints a table; bench/collect.sh copies it into
bench/results/ on the development machine.
"""
import argparse
import concurrent.futures
import ctypes
import datetime
import functools
import hashlib
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_SPECS = ['scale_invariant', 'causal', 'alibi', 'softcap', 'sliding_window', 'document']
TOKENS = 32768
HEADS = 16
TOL = {'bf16': 3e-2, 'f16': 5e-3}
TORCH_DTYPE = {'bf16': torch.bfloat16, 'f16': torch.float16}
T0 = time.perf_counter()


def log(*a):
    print(f'[{time.perf_counter() - T0:7.1f}s]', *a, flush=True)


# ---------------------------------------------------------------------------
# Independent float64 reference: the six bench specs written out by hand from
# their .attn text (not from the IR, not from the flex module). Each takes
# broadcastable tensors: q_pos/kv (int64 absolute positions), h (head index),
# P (params), T (tables); logit() also takes the raw dot product s (float64).
# ---------------------------------------------------------------------------
def _causal(q, kv, h, P, T):
    return kv <= q


REF = {
    'causal': dict(
        logit=lambda s, q, kv, h, D, P, T: s / math.sqrt(D),
        mask=_causal),
    'scale_invariant': dict(
        logit=lambda s, q, kv, h, D, P, T: (
            lambda l: s / math.sqrt(D) * torch.sqrt(2 * l + 1) - 2 * l)(torch.log1p((q - kv).double() / P['tau'])),
        mask=_causal),
    'alibi': dict(
        logit=lambda s, q, kv, h, D, P, T: s / math.sqrt(D) - T['slopes'].double()[h] * (q - kv).double(),
        mask=_causal),
    'softcap': dict(
        logit=lambda s, q, kv, h, D, P, T: P['cap'] * torch.tanh(s / math.sqrt(D) / P['cap']),
        mask=_causal),
    'sliding_window': dict(
        logit=lambda s, q, kv, h, D, P, T: s / math.sqrt(D),
        mask=lambda q, kv, h, P, T: (kv <= q) & (q - kv < P['window'])),
    'document': dict(
        logit=lambda s, q, kv, h, D, P, T: s / math.sqrt(D),
        mask=lambda q, kv, h, P, T: (kv <= q) & (T['doc'].long()[q.clamp(0, T['doc'].numel() - 1)]
                                                == T['doc'].long()[kv.clamp(0, T['doc'].numel() - 1)])),
}


def param_defaults(manifest):
    """Params at their defaults, typed per the manifest (JSON gives 10 for 10.0)."""
    return {p['name']: (int(p['default']) if p['type'] == 'i32' else float(p['default'])) for p in manifest['params']}


def make_tables(manifest, N, H, device):
    """Table inputs per the manifest: i32 tables become document ids (random
    document lengths between N/16 and N/4, fixed seed), f32 tables ALiBi slopes."""
    out = {}
    for t in manifest.get('inputs', []):
        n = H if t['axis'] == 'heads' else N
        if t['elem'] == 'i32':
            rng = np.random.default_rng(1000 + N)
            lens = rng.integers(max(1, N // 16), max(2, N // 4) + 1, size=n)
            ids = np.repeat(np.arange(n), lens)[:n]
            out[t['name']] = torch.as_tensor(ids.astype(np.int32), device=device)
        else:
            out[t['name']] = torch.tensor([2.0 ** (-8.0 * (i + 1) / n) for i in range(n)], dtype=torch.float32, device=device)
    return out


# ---------------------------------------------------------------------------
# Our kernels: NVRTC -> cubin (disk cache) -> driver-API module, launched per the ABI.
# ---------------------------------------------------------------------------
class Nvrtc:
    """NVRTC through cupy's binding, else cuda-python's. Counts compiles."""

    def __init__(self):
        self.compiles = 0
        self.impl = None
        try:
            try:
                from cupy_backends.cuda.libs import nvrtc as cn
            except ImportError:
                from cupy.cuda import nvrtc as cn
            self.version = '%d.%d' % tuple(cn.getVersion())
            self.cupy = cn
            self.impl = 'cupy'
        except Exception as e:  # noqa: BLE001
            log(f'cupy NVRTC binding unavailable ({e!r}); trying cuda-python')
            from cuda.bindings import nvrtc as nb
            err, major, minor = nb.nvrtcVersion()
            self.version = f'{major}.{minor}'
            self.nb = nb
            self.impl = 'cuda-python'

    def compile(self, source, arch, name):
        self.compiles += 1
        opts = [f'--gpu-architecture={arch}', '--std=c++17']
        if self.impl == 'cupy':
            cn = self.cupy
            prog = cn.createProgram(source, name, [], [])
            try:
                try:
                    cn.compileProgram(prog, opts)
                except Exception as e:
                    raise RuntimeError(f'NVRTC failed on {name}: {e}\n{cn.getProgramLog(prog)}') from None
                return cn.getCUBIN(prog)
            finally:
                cn.destroyProgram(prog)
        nb = self.nb
        err, prog = nb.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
        bopts = [o.encode() for o in opts]
        (err,) = nb.nvrtcCompileProgram(prog, len(bopts), bopts)
        if int(err) != 0:
            _, n = nb.nvrtcGetProgramLogSize(prog)
            buf = b' ' * n
            nb.nvrtcGetProgramLog(prog, buf)
            raise RuntimeError(f'NVRTC failed on {name}: {err}\n{buf.decode(errors="replace")}')
        _, n = nb.nvrtcGetCUBINSize(prog)
        buf = b' ' * n
        nb.nvrtcGetCUBIN(prog, buf)
        nb.nvrtcDestroyProgram(prog)
        return buf


class Driver:
    """The few CUDA driver calls the bench needs, through ctypes (a stable C ABI),
    in the primary context that torch has made current on this thread."""
    MAX_DYNAMIC_SMEM, NUM_REGS, LOCAL_BYTES, SMEM_CARVEOUT = 8, 4, 3, 9

    def __init__(self):
        c, errs = None, []
        for name in ('libcuda.so.1', '/usr/local/nvidia/lib64/libcuda.so.1', '/usr/lib/x86_64-linux-gnu/libcuda.so.1', 'libcuda.so'):
            try:
                c = ctypes.CDLL(name)
                break
            except OSError as e:
                errs.append(str(e))
        if c is None:
            raise RuntimeError('libcuda not found: ' + '; '.join(errs))
        vp, ui, i = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int
        c.cuModuleLoadData.argtypes = [ctypes.POINTER(vp), ctypes.c_char_p]
        c.cuModuleGetFunction.argtypes = [ctypes.POINTER(vp), vp, ctypes.c_char_p]
        c.cuModuleUnload.argtypes = [vp]
        c.cuFuncSetAttribute.argtypes = [vp, i, i]
        c.cuFuncGetAttribute.argtypes = [ctypes.POINTER(i), i, vp]
        c.cuLaunchKernel.argtypes = [vp, ui, ui, ui, ui, ui, ui, ui, vp, ctypes.POINTER(vp), ctypes.POINTER(vp)]
        c.cuGetErrorName.argtypes = [i, ctypes.POINTER(ctypes.c_char_p)]
        for f in ('cuModuleLoadData', 'cuModuleGetFunction', 'cuModuleUnload', 'cuFuncSetAttribute',
                  'cuFuncGetAttribute', 'cuLaunchKernel', 'cuGetErrorName'):
            getattr(c, f).restype = i
        self.c = c

    def check(self, rc, what):
        if rc != 0:
            name = ctypes.c_char_p()
            self.c.cuGetErrorName(rc, ctypes.byref(name))
            raise RuntimeError(f'{what}: {(name.value or b"CUDA error %d" % rc).decode()}')

    def load(self, cubin, entries):
        """The module and one function per entry point."""
        mod = ctypes.c_void_p()
        self.check(self.c.cuModuleLoadData(ctypes.byref(mod), cubin), 'cuModuleLoadData')
        fns = []
        for entry in entries:
            fn = ctypes.c_void_p()
            self.check(self.c.cuModuleGetFunction(ctypes.byref(fn), mod, entry.encode()), f'cuModuleGetFunction({entry})')
            fns.append(fn)
        return mod, fns

    def set_attr(self, fn, attr, value):
        self.check(self.c.cuFuncSetAttribute(fn, attr, value), 'cuFuncSetAttribute')

    def get_attr(self, fn, attr):
        out = ctypes.c_int()
        self.check(self.c.cuFuncGetAttribute(ctypes.byref(out), attr, fn), 'cuFuncGetAttribute')
        return out.value

    def launch(self, fn, grid, block, smem, stream, cargs):
        params = (ctypes.c_void_p * len(cargs))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in cargs])
        self.check(self.c.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem,
                                         ctypes.c_void_p(stream or None), params, None), 'cuLaunchKernel')


DRIVER = None


class OursKernel:
    """One generated kernel: source + manifest; compile() -> cubin, load() -> function."""

    def __init__(self, base):
        self.base = base
        self.name = os.path.basename(base)
        with open(base + '.cu') as f:
            self.source = f.read()
        with open(base + '.manifest.json') as f:
            self.m = json.load(f)
        self.abi = self.m['abi']
        self.fn = None
        self.fns = []
        self.module = None

    def cache_file(self, cache_dir, arch, nvrtc_version):
        key = hashlib.sha256(f'{self.source}\0{arch}\0{nvrtc_version}'.encode()).hexdigest()
        return os.path.join(cache_dir, f'{key}.cubin')

    def compile(self, nvrtc, arch, cache_dir):
        """cubin from the disk cache, else NVRTC (then cached). Returns (cubin, seconds, hit)."""
        t0 = time.perf_counter()
        path = self.cache_file(cache_dir, arch, nvrtc.version)
        if os.path.exists(path):
            with open(path, 'rb') as f:
                return f.read(), time.perf_counter() - t0, True
        cubin = nvrtc.compile(self.source, arch, self.name + '.cu')
        os.makedirs(cache_dir, exist_ok=True)
        tmp = path + f'.{os.getpid()}.tmp'
        with open(tmp, 'wb') as f:
            f.write(cubin)
        os.replace(tmp, path)
        return cubin, time.perf_counter() - t0, False

    def launches(self):
        """Launch configurations of the source: the main kernel, then abi.variants (the first whose conditions hold wins)."""
        main = {'entryPoint': self.m['entryPoint'], 'tile': self.m['tile'], 'block': self.abi['block'],
                'grid': self.abi['grid'], 'dynamicSmemBytes': self.abi['dynamicSmemBytes'], 'blocksPerSm': self.abi.get('blocksPerSm', 1),
                'persistentGrid': self.abi.get('persistentGrid')}
        return [main] + list(self.abi.get('variants', []))

    def launch_for(self, Nq, Nk):
        """(index into launches(), that launch) for a call of Nq query rows and Nk keys: the first variant with
        Nk <= maxNk (short rows) and Nq >= minNq (long rows), each where given, else the main kernel."""
        cfgs = self.launches()
        for i, v in enumerate(cfgs[1:], 1):
            if Nk <= v.get('maxNk', Nk) and Nq >= v.get('minNq', Nq):
                return i, v
        return 0, cfgs[0]

    def load(self, cubin):
        cfgs = self.launches()
        mod, fns = DRIVER.load(bytes(cubin), [c['entryPoint'] for c in cfgs])
        for cfg, fn in zip(cfgs, fns):
            smem = int(cfg['dynamicSmemBytes'])
            if smem > 48 * 1024:
                DRIVER.set_attr(fn, Driver.MAX_DYNAMIC_SMEM, smem)
            if int(cfg.get('blocksPerSm', 1)) > 1:  # all of the carveout as shared memory, so that they fit
                DRIVER.set_attr(fn, Driver.SMEM_CARVEOUT, 100)
        # The old module stays loaded (a handle may still be in use).
        self.module, self.fns = mod, fns
        self.fn = fns[0]
        return self.fn

    @property
    def fn_handle(self):
        return None if self.fn is None else self.fn.value

    def regs(self):
        return DRIVER.get_attr(self.fn, Driver.NUM_REGS), DRIVER.get_attr(self.fn, Driver.LOCAL_BYTES)

    @staticmethod
    def grid(cfg, sizes):
        """The launch grid: a persistent kernel's (one block per SM slot) where the manifest gives one, else the plain one."""
        env = dict(sizes)
        env['tile'] = types.SimpleNamespace(**cfg['tile'])
        env['ceil'], env['min'] = math.ceil, min
        env['sms'] = sm_count()
        env['blocksPerSm'] = int(cfg.get('blocksPerSm', 1))
        formula = cfg.get('persistentGrid') or cfg['grid']
        return tuple(int(eval(g, {'__builtins__': {}}, env)) for g in formula)  # noqa: S307 (manifest formulas)

    def launch(self, q, k, v, o, lse, params, tables, stream):
        B, Hq, Nq, D = q.shape
        Hkv, Nk = k.shape[1], k.shape[2]
        if D != self.m['headDim']:
            raise ValueError(f'{self.name}: head_dim {D} != {self.m["headDim"]}')
        sizes = {'B': B, 'Hq': Hq, 'Hkv': Hkv, 'Nq': Nq, 'Nk': Nk}
        ptrs = {'Q': q, 'K': k, 'V': v, 'O': o, 'LSE': lse}
        args = []
        for a in self.abi['args']:
            role, nm = a['role'], a['name']
            if role == 'tensor':
                t = ptrs[nm]
                assert t.is_contiguous() and t.is_cuda
                args.append(ctypes.c_uint64(t.data_ptr()))
            elif role == 'size':
                args.append(ctypes.c_int32(sizes[nm]))
            elif role == 'param':
                val = params[nm]
                args.append(ctypes.c_int32(int(val)) if a['kind'] == 'i32' else ctypes.c_float(float(val)))
            elif role == 'table':
                t = tables[nm]
                want = torch.int32 if a.get('elem') == 'i32' else torch.float32
                assert t.dtype == want and t.is_contiguous() and t.is_cuda, f'table {nm}: {t.dtype}'
                args.append(ctypes.c_uint64(t.data_ptr()))
            else:
                raise ValueError(f'{self.name}: unknown argument role {role}')
        i, cfg = self.launch_for(Nq, Nk)
        block = tuple(cfg['block']) + (1,) * (3 - len(cfg['block']))
        DRIVER.launch(self.fns[i], self.grid(cfg, sizes), block, int(cfg['dynamicSmemBytes']), stream, args)


def gpu_state():
    """Which physical GPU this is and how it runs now (nvidia-smi), for comparing runs: the same model has run the
    same kernels 10% apart on two sessions' GPUs. None where nvidia-smi is missing or fails."""
    fields = ['uuid', 'driver_version', 'pstate', 'clocks.sm', 'clocks.max.sm', 'clocks.mem', 'power.draw', 'power.limit',
              'temperature.gpu', 'clocks_throttle_reasons.active']
    try:
        out = subprocess.run(['nvidia-smi', '-i', str(torch.cuda.current_device()), f'--query-gpu={",".join(fields)}',
                              '--format=csv,noheader'], capture_output=True, text=True, timeout=20, check=True).stdout
        return dict(zip(fields, (v.strip() for v in out.strip().splitlines()[0].split(','))))
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


@functools.lru_cache(maxsize=None)
def sm_count():
    return torch.cuda.get_device_properties(0).multi_processor_count


def device_arch():
    major, minor = torch.cuda.get_device_capability()
    return 'sm_90a' if (major, minor) == (9, 0) else f'sm_{major}{minor}'


# ---------------------------------------------------------------------------
# Flex
# ---------------------------------------------------------------------------
def context_lost(e):
    """A launch error after which the CUDA context is gone (an illegal address, a launch failure): nothing can run."""
    return 'illegal' in str(e).lower() or 'launch failure' in str(e).lower()


def load_module(path):
    """A generated Python module (the flex or the torch target's) from its file."""
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    # Registered before it runs: dynamo looks the module of score_mod's globals up
    # by name (without this: 'ModuleNotFoundError: No module named <spec>_flex').
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def setup_flex():
    from torch.nn.attention.flex_attention import flex_attention
    cfg = torch._dynamo.config
    raised = {}
    for name, val in [('cache_size_limit', 4096), ('recompile_limit', 4096),
                      ('accumulated_cache_size_limit', 16384), ('accumulated_recompile_limit', 16384)]:
        if hasattr(cfg, name):
            setattr(cfg, name, val)
            raised[name] = val
    if hasattr(cfg, 'fail_on_recompile_limit_hit'):
        cfg.fail_on_recompile_limit_hit = True  # never fall back to eager silently
        raised['fail_on_recompile_limit_hit'] = True
    cfg.suppress_errors = False
    return torch.compile(flex_attention, dynamic=False), raised


def compile_friendly_f32(a):
    """Replacement for the flex module's _f32 helper, used only if the module's
    own score_mod fails under torch.compile (recorded as flex_patched)."""
    if isinstance(a, torch.Tensor):
        return a.to(torch.float32)
    return float(a)


def flex_call(compiled, q, k, v, score_mod, block_mask):
    return compiled(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=1.0,
                    enable_gqa=k.shape[1] != q.shape[1], return_lse=True)


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------
def time_cuda(fn, warmup, repeats):
    """Median, min and every per-call CUDA event time (ms, in launch order), all on the current stream."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    for s, e in ev:
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    ts = [s.elapsed_time(e) for s, e in ev]
    return statistics.median(ts), min(ts), [round(t, 4) for t in ts]


def count_kept(mask_fn, N, device, chunk=2048):
    """Kept (query, key) pairs of one (batch, head), counted exactly, blockwise on the GPU."""
    kv = torch.arange(N, device=device, dtype=torch.int64)[None, :]
    total = 0
    for r0 in range(0, N, chunk):
        q = torch.arange(r0, min(N, r0 + chunk), device=device, dtype=torch.int64)[:, None]
        total += int(torch.as_tensor(mask_fn(q, kv)).expand(q.shape[0], N).sum().item())
    return total


def sample_rows(B, H, N, n, gen):
    rows = {(0, 0, 0), (B - 1, H - 1, N - 1), (0, H - 1, N // 2)}
    while len(rows) < n:
        rows.add((int(torch.randint(B, (1,), generator=gen)), int(torch.randint(H, (1,), generator=gen)),
                  int(torch.randint(N, (1,), generator=gen))))
    return sorted(rows)


def reference_rows(logit_fn, mask_fn, q, k, v, rows, D):
    """float64 output rows and LSE for the sampled (b, h, i)."""
    B, Hq, Nq, _ = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    kv = torch.arange(Nk, device=q.device, dtype=torch.int64)
    outs, lses = [], []
    for b, h, i in rows:
        hk = h // (Hq // Hkv)
        K, V = k[b, hk].double(), v[b, hk].double()
        s = K @ q[b, h, i].double()
        qpos = torch.tensor(i + (Nk - Nq), device=q.device, dtype=torch.int64)
        keep = torch.as_tensor(mask_fn(qpos, kv, h)).expand(Nk)
        logit = torch.where(keep, torch.as_tensor(logit_fn(s, qpos, kv, h)).double(), torch.tensor(-math.inf, device=q.device, dtype=torch.float64))
        m = logit.max()
        if not torch.isfinite(m):
            outs.append(torch.zeros(D, dtype=torch.float64, device=q.device))
            lses.append(m)
            continue
        p = torch.exp(logit - m)
        l_ = p.sum()
        outs.append((p @ V) / l_)
        lses.append(m + torch.log(l_))
    return torch.stack(outs), torch.stack(lses)


def row_errors(o, lse, rows, ref_o, ref_lse):
    got_o = torch.stack([o[b, h, i].double() for b, h, i in rows])
    got_l = torch.stack([lse[b, h, i].double() for b, h, i in rows])
    e_o = float((got_o - ref_o).abs().max())
    fin = torch.isfinite(ref_lse)
    e_l = float((got_l[fin] - ref_lse[fin]).abs().max()) if bool(fin.any()) else 0.0
    if not bool(torch.isfinite(got_o).all()):
        e_o = math.inf
    return e_o, e_l


# ---------------------------------------------------------------------------
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--build', default=os.path.join(HERE, 'build'))
    ap.add_argument('--out', default=os.path.join(HERE, 'results'))
    ap.add_argument('--quick', action='store_true', help='causal + scale_invariant, bf16, D 128, N 4096 and 16384, fewer repeats')
    ap.add_argument('--specs')
    ap.add_argument('--dims')
    ap.add_argument('--lens')
    ap.add_argument('--dtypes')
    ap.add_argument('--warmup', type=int)
    ap.add_argument('--repeats', type=int)
    ap.add_argument('--rows', type=int, default=12, help='sampled query rows per correctness check')
    ap.add_argument('--budget-s', type=float, default=470, help='stop starting new rows after this many seconds')
    ap.add_argument('--cache', default=None, help='cubin cache dir (default: a fresh one, so the NVRTC compiles are cold)')
    ap.add_argument('--prebuilt', action='store_true', help='load the nvcc cubins of bench/build/cubin instead of NVRTC')
    ap.add_argument('--no-flex', action='store_true')
    ap.add_argument('--no-sdpa', action='store_true')
    ap.add_argument('--torch-module', action='store_true',
                    help='also check and time our kernel through its --target torch module (bench/build/torch), as a PyTorch user calls it')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    q = a.quick
    a.specs = (a.specs or ('causal,scale_invariant' if q else ','.join(ALL_SPECS))).split(',')
    a.dims = [int(x) for x in (a.dims or ('128' if q else '64,128')).split(',')]
    a.lens = [int(x) for x in (a.lens or ('4096,16384' if q else '1024,4096,16384')).split(',')]
    a.dtypes = (a.dtypes or ('bf16' if q else 'bf16,f16')).split(',')
    a.warmup = a.warmup if a.warmup is not None else (2 if q else 3)
    a.repeats = a.repeats if a.repeats is not None else (7 if q else 15)
    for s in a.specs:
        if not os.path.exists(os.path.join(a.build, 'flex', f'{s}_flex.py')):
            sys.exit(f'no build for spec {s!r} in {a.build}: run bash bench/prepare.sh first')
    return a


class Results:
    def __init__(self, out_dir, meta):
        gpu = torch.cuda.get_device_name()
        tag = next((t for t in ('h100', 'h200', 'a100', 'b200') if t in gpu.lower()), 'gpu')
        os.makedirs(out_dir, exist_ok=True)
        self.path = os.path.join(out_dir, f'{tag}-{datetime.date.today().isoformat()}.json')
        self.doc = {'meta': meta, 'rows': [], 'compile': {}, 'failures': []}

    def save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(plain(self.doc), f, indent=1, allow_nan=False)
        os.replace(tmp, self.path)


def plain(x):
    """JSON-safe copy: non-finite floats become the strings 'inf'/'nan' (strict JSON parsers reject Infinity)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (bool, int, str)) or x is None:
        return x
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.integer):
        return int(x)
    return str(x)


def fmt(x, spec='.3f'):
    return '-' if x is None else format(x, spec)


def print_table(rows, header=True):
    # The fastest launch beside the medians: at D=128 launches fall in two modes ~12% apart (bench/README.md).
    hdr = f'{"spec":16} {"dt":4} {"D":>3} {"N":>6} | {"ours ms":>8} {"flex ms":>8} {"sdpa ms":>8} {"ours min":>8} {"sdpa min":>8} | {"ours TF":>7} {"flex TF":>7} {"sdpa TF":>7} {"x flex":>6} | {"err ours":>8} {"err flex":>8} {"ok":>4}'
    if header:
        print(hdr)
        print('-' * len(hdr))
    for r in rows:
        ratio = r['ours_tflops'] / r['flex_tflops'] if r.get('ours_tflops') and r.get('flex_tflops') else None
        print(f'{r["spec"]:16} {r["dtype"]:4} {r["D"]:>3} {r["N"]:>6} | {fmt(r.get("ours_ms")):>8} {fmt(r.get("flex_ms")):>8} {fmt(r.get("sdpa_ms")):>8} {fmt(r.get("ours_min_ms")):>8} {fmt(r.get("sdpa_min_ms")):>8} | '
              f'{fmt(r.get("ours_tflops"), ".1f"):>7} {fmt(r.get("flex_tflops"), ".1f"):>7} {fmt(r.get("sdpa_tflops"), ".1f"):>7} {fmt(ratio, ".2f"):>6} | '
              f'{fmt(r.get("err_ours"), ".1e"):>8} {fmt(r.get("err_flex"), ".1e"):>8} {("ok" if r.get("ours_ok") else "FAIL"):>4}', flush=True)


def main():
    global DRIVER
    a = parse_args()
    torch.cuda.init()
    dev = torch.device('cuda')
    torch.zeros(1, device=dev)  # creates torch's (primary) context and makes it current here
    DRIVER = Driver()
    try:
        import cupy
        cupy_version = cupy.__version__
    except Exception as e:  # noqa: BLE001
        cupy_version = f'unavailable ({e!r})'

    arch = device_arch()
    nvrtc = None if a.prebuilt else Nvrtc()
    build_info = {}
    bj = os.path.join(a.build, 'build.json')
    if os.path.exists(bj):
        with open(bj) as f:
            build_info = json.load(f)
    meta = {
        'gpu': torch.cuda.get_device_name(), 'arch': arch, 'sms': torch.cuda.get_device_properties(0).multi_processor_count,
        'torch': torch.__version__, 'cuda': torch.version.cuda, 'cupy': cupy_version,
        'nvrtc': None if nvrtc is None else f'{nvrtc.version} ({nvrtc.impl})', 'python': platform.python_version(),
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'command': ' '.join(sys.argv), 'tokens': TOKENS, 'heads': HEADS,
        'warmup': a.warmup, 'repeats': a.repeats, 'sampled_rows': a.rows, 'build': build_info,
        'timing': 'CUDA events around each call on the current stream; median of repeats after warm-up (min and every launch in *_min_ms, *_launch_ms)',
        'flops': '4*D per kept (q, k) pair; kept pairs counted exactly from the mask at each N; SDPA counted over causal pairs',
        'tolerance_max_abs': TOL,
        'gpu_state_start': gpu_state(),
    }
    res = Results(a.out, meta)
    log(f'{meta["gpu"]} ({arch}, {meta["sms"]} SMs), torch {meta["torch"]}, cupy {meta["cupy"]}, NVRTC {meta["nvrtc"]}, attnc {build_info.get("attnc_rev", "?")[:10]}')
    stream = torch.cuda.current_stream().cuda_stream  # torch's events and our launches share it
    cache_dir = a.cache or tempfile.mkdtemp(prefix='attnc-cubin-')

    # ---- kernels: cold compile latency of one module, then all of them (parallel NVRTC) ----
    kernels = {}
    for s in a.specs:
        for dt in a.dtypes:
            for D in a.dims:
                kernels[(s, dt, D)] = OursKernel(os.path.join(a.build, 'cuda', f'{s}.{dt}.d{D}'))
    comp = res.doc['compile']
    first = ('scale_invariant', 'bf16', 128) if ('scale_invariant', 'bf16', 128) in kernels else next(iter(kernels))
    try:
        if nvrtc is not None:
            kern = kernels[first]
            cold_dir = tempfile.mkdtemp(prefix='attnc-cold-')
            t0 = time.perf_counter()
            cubin, c_s, hit = kern.compile(nvrtc, arch, cold_dir)
            t1 = time.perf_counter()
            kern.load(cubin)
            t2 = time.perf_counter()
            warm = []
            for _ in range(5):
                w0 = time.perf_counter()
                cub, _, hit2 = kern.compile(nvrtc, arch, cold_dir)
                assert hit2
                kern.load(cub)
                warm.append(time.perf_counter() - w0)
            rms = build_info.get('attnc_render_ms', {})
            render = rms.get(first[0], {})
            # Cold = the first compile in a fresh Node process (JIT not yet warm), whichever spec it was.
            render_cold_ms = max([render.get('first_ms') or 0, rms.get('_process_first_ms') or 0])
            comp['ours'] = {
                'kernel': kern.name, 'nvrtc_compile_s': round(t1 - t0, 4), 'module_load_s': round(t2 - t1, 4),
                'cold_gpu_side_s': round(t2 - t0, 4),
                'attnc_render_ms_in_process': render.get('first_ms'), 'attnc_render_ms_cold_process': render_cold_ms,
                'attnc_cli_wall_ms': build_info.get('attnc_compile_ms', {}).get(first[0], {}).get(f'{first[1]}.d{first[2]}'),
                'cold_total_s': round(t2 - t0 + render_cold_ms / 1000, 4),
                'warm_cache_hit_ms': [round(w * 1000, 3) for w in warm], 'warm_median_ms': round(statistics.median(warm) * 1000, 3),
                'registers_local_bytes': kern.regs(),
            }
            log(f'ours cold: render {render_cold_ms} ms (first compile in a Node process, bench/build/build.json) + NVRTC {t1 - t0:.3f} s + load {1000 * (t2 - t1):.1f} ms; '
                f'warm (cubin cache hit + load): median {1000 * statistics.median(warm):.2f} ms; (registers, local bytes) {kern.regs()}')
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res.doc['failures'].append({'stage': 'cold compile', 'error': f'{type(e).__name__}: {e}'[:4000]})
        log(f'FAIL (cold compile): {type(e).__name__}: {e}')

    t0 = time.perf_counter()
    todo = list(kernels.values())
    if a.prebuilt:
        for kern in todo:
            with open(os.path.join(a.build, 'cubin', f'{kern.name}.{arch}.cubin'), 'rb') as f:
                kern.load(f.read())
        per = {}
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 4)) as ex:
            futs = {ex.submit(kern.compile, nvrtc, arch, cache_dir): kern for kern in todo}
            per = {}
            for fut in concurrent.futures.as_completed(futs):
                kern = futs[fut]
                try:
                    cubin, secs, _ = fut.result()
                    per[kern.name] = round(secs, 3)
                    kern.cubin = cubin
                except Exception as e:  # noqa: BLE001
                    kern.error = str(e)
                    log(f'FAIL: NVRTC {kern.name}: {e}')
                    res.doc['failures'].append({'kernel': kern.name, 'stage': 'nvrtc', 'error': str(e)[:4000]})
        for kern in todo:
            if getattr(kern, 'cubin', None) is not None:
                try:
                    kern.load(kern.cubin)
                except Exception as e:  # noqa: BLE001
                    log(f'FAIL: load {kern.name}: {e}')
                    res.doc['failures'].append({'kernel': kern.name, 'stage': 'load', 'error': str(e)[:4000]})
        comp['ours_all_modules'] = {'count': len(todo), 'parallel_wall_s': round(time.perf_counter() - t0, 3), 'per_module_s': per}
    log(f'{len(todo)} modules compiled and loaded in {time.perf_counter() - t0:.1f} s')
    res.save()

    # ---- no recompile for new lengths and params: one handle, new values ----
    try:
        if first in kernels and kernels[first].fn is not None and nvrtc is not None:
            kern = kernels[first]
            s, dt, D = first
            ptr0, n0 = kern.fn_handle, nvrtc.compiles
            checks = []
            pdefaults = param_defaults(kern.m)
            variants = [(1000, {}), (4096, {})]
            for p in kern.m['params']:
                variants.append((1000, {p['name']: (p['default'] * 10 if p['type'] == 'f32' else max(1, int(p['default']) // 2))}))
            for N, over in variants:
                P = {**pdefaults, **over}
                g = torch.Generator(device=dev).manual_seed(a.seed + 7)
                q, k, v = (torch.randn(1, 4, N, D, device=dev, dtype=TORCH_DTYPE[dt], generator=g) for _ in range(3))
                T = make_tables(kern.m, N, 4, dev)
                o = torch.full_like(q, math.nan)
                lse = torch.full((1, 4, N), math.nan, device=dev)
                torch.cuda.synchronize()
                w0 = time.perf_counter()
                kern.launch(q, k, v, o, lse, P, T, stream)
                torch.cuda.synchronize()
                wall = time.perf_counter() - w0
                rows = sample_rows(1, 4, N, 6, torch.Generator().manual_seed(N))
                if s in REF:
                    ref = REF[s]
                    ro, rl = reference_rows(lambda x, qp, kv, h: ref['logit'](x, qp, kv, h, D, P, T),
                                            lambda qp, kv, h: ref['mask'](qp, kv, h, P, T), q, k, v, rows, D)
                    err = row_errors(o, lse, rows, ro, rl)[0]
                else:
                    err = None
                checks.append({'N': N, 'params': P, 'first_call_ms': round(wall * 1000, 3), 'max_abs_err': err,
                               'ok': err is not None and err <= TOL[dt]})
            comp['ours_no_recompile'] = {'kernel': kern.name, 'same_function_handle': kern.fn_handle == ptr0,
                                         'nvrtc_compiles_during': nvrtc.compiles - n0, 'calls': checks}
            log(f'no recompile: {len(checks)} calls with new N / params, NVRTC compiles during: {nvrtc.compiles - n0}, '
                f'same handle: {kern.fn_handle == ptr0}; ' + ', '.join(f'N={c["N"]} {c["params"]} {c["first_call_ms"]:.2f} ms err {fmt(c["max_abs_err"], ".1e")}' for c in checks))
            res.save()
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res.doc['failures'].append({'stage': 'no recompile', 'error': f'{type(e).__name__}: {e}'[:4000]})
        log(f'FAIL (no recompile): {type(e).__name__}: {e}')

    # ---- the table ----
    compiled = None
    flex_mods = {}
    for s in a.specs:
        try:
            flex_mods[s] = load_module(os.path.join(a.build, 'flex', f'{s}_flex.py'))
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            flex_mods[s] = None
            res.doc['failures'].append({'stage': f'flex module {s}', 'error': f'{type(e).__name__}: {e}'[:4000]})
    if not a.no_flex:
        try:
            compiled, raised = setup_flex()
            meta['flex_dynamo_config'] = raised
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            res.doc['failures'].append({'stage': 'flex setup', 'error': f'{type(e).__name__}: {e}'[:4000]})
    torch_mods = {}
    if a.torch_module:
        for s in a.specs:
            for dt in a.dtypes:
                for D in a.dims:
                    try:
                        torch_mods[(s, dt, D)] = load_module(os.path.join(a.build, 'torch', f'{s}_{dt}_d{D}.py'))
                    except Exception as e:  # noqa: BLE001
                        traceback.print_exc()
                        res.doc['failures'].append({'stage': f'torch module {s}/{dt}/D{D}', 'error': f'{type(e).__name__}: {e}'[:4000]})
    patched = set()
    any_fail = False
    skipped = []
    gen = torch.Generator(device=dev)
    for dt in a.dtypes:
        for D in a.dims:
            for N in a.lens:
                B = max(1, TOKENS // N)
                if time.perf_counter() - T0 > a.budget_s:
                    skipped += [f'{s}/{dt}/D{D}/N{N}' for s in a.specs]
                    continue
                log(f'{dt} D={D} N={N} B={B}')
                gen.manual_seed(a.seed + N + D)
                q, k, v = (torch.randn(B, HEADS, N, D, device=dev, dtype=TORCH_DTYPE[dt], generator=gen) for _ in range(3))
                sdpa_ms = sdpa_min_ms = sdpa_launch_ms = None
                if not a.no_sdpa:
                    try:
                        sdpa_ms, sdpa_min_ms, sdpa_launch_ms = time_cuda(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), a.warmup, a.repeats)
                    except Exception as e:  # noqa: BLE001
                        res.doc['failures'].append({'row': f'sdpa/{dt}/D{D}/N{N}', 'error': f'{type(e).__name__}: {e}'[:2000]})
                causal_pairs = N * (N + 1) // 2
                for s in a.specs:
                    if time.perf_counter() - T0 > a.budget_s:
                        skipped.append(f'{s}/{dt}/D{D}/N{N}')
                        continue
                    row = {'spec': s, 'D': D, 'N': N, 'dtype': dt, 'B': B, 'H': HEADS, 'sdpa_ms': sdpa_ms, 'sdpa_min_ms': sdpa_min_ms, 'sdpa_launch_ms': sdpa_launch_ms}
                    try:
                        run_row(a, row, kernels[(s, dt, D)], flex_mods[s], compiled, patched, q, k, v, stream, dev, comp, torch_mods.get((s, dt, D)))
                    except Exception as e:  # noqa: BLE001
                        traceback.print_exc()
                        row['error'] = f'{type(e).__name__}: {e}'[:2000]
                        res.doc['failures'].append({'row': f'{s}/{dt}/D{D}/N{N}', 'error': row['error']})
                    if sdpa_ms:
                        row['sdpa_tflops'] = 4 * D * causal_pairs * B * HEADS / (sdpa_ms * 1e9)
                    any_fail |= not row.get('ours_ok', False)
                    res.doc['rows'].append(row)
                    res.save()
                    print_table([row], header=len(res.doc['rows']) == 1)
                del q, k, v
                torch.cuda.empty_cache()
    if skipped:
        res.doc['skipped_over_budget'] = skipped
        log(f'over the {a.budget_s:.0f} s budget: skipped {len(skipped)} rows: {", ".join(skipped)}')
    firsts = [r['flex_first_call_s'] for r in res.doc['rows'] if r.get('flex_first_call_s') is not None]
    if firsts:
        comp['flex_first_call_s'] = {'min': min(firsts), 'median': statistics.median(firsts), 'max': max(firsts), 'count': len(firsts)}
    if patched:
        meta['flex_patched_f32_helper'] = sorted(patched)
    meta['wall_s'] = round(time.perf_counter() - T0, 1)
    meta['gpu_state_end'] = gpu_state()
    res.save()

    print()
    print(f'== {meta["gpu"]}, B*N = {TOKENS}, H = {HEADS}, median of {a.repeats} after {a.warmup} warm-ups; TFLOP/s over kept pairs ==')
    print_table(res.doc['rows'])
    c = comp.get('ours')
    if c:
        print(f'compile, ours ({c["kernel"]}): cold {c["cold_total_s"]:.3f} s = render {c["attnc_render_ms_cold_process"]} ms + NVRTC {c["nvrtc_compile_s"]:.3f} s + load {1000 * c["module_load_s"]:.1f} ms; '
              f'warm (cache hit) {c["warm_median_ms"]:.2f} ms')
    if 'ours_no_recompile' in comp:
        nr = comp['ours_no_recompile']
        print(f'new N / params, ours: {len(nr["calls"])} calls, NVRTC compiles {nr["nvrtc_compiles_during"]}, same handle {nr["same_function_handle"]}, '
              f'all correct {all(x["ok"] for x in nr["calls"])}')
    if 'flex_first_call_s' in comp:
        f = comp['flex_first_call_s']
        print(f'compile, Flex first call (torch.compile, per shape): min {f["min"]:.2f} s, median {f["median"]:.2f} s, max {f["max"]:.2f} s over {f["count"]}')
    if 'flex_new_param' in comp:
        print(f'Flex, new param value (new closures, same shape): {comp["flex_new_param"]}')
    print(f'results: {res.path}  ({meta["wall_s"]} s)')
    if any_fail or res.doc['failures']:
        print('FAILED: ' + '; '.join((f.get('row') or f.get('kernel') or f.get('stage') or '?') + ': ' + f['error'].splitlines()[0][:200] for f in res.doc['failures'])
              + ('' if not any_fail else ' (and/or ours outside tolerance: see the ok column)'))
        sys.exit(1)


def dynamo_graphs():
    try:
        return int(torch._dynamo.utils.counters['stats']['unique_graphs'])
    except Exception:  # noqa: BLE001
        return None


def run_row(a, row, kern, fmod, compiled, patched, q, k, v, stream, dev, comp, tmod=None):
    s, dt, D, N, B = row['spec'], row['dtype'], row['D'], row['N'], row['B']
    H = q.shape[1]
    P = param_defaults(kern.m)
    T = make_tables(kern.m, N, H, dev)
    rows = sample_rows(B, H, N, a.rows, torch.Generator().manual_seed(a.seed + 31 * N + D))

    # kept pairs: the independent mask, cross-checked with the flex module's mask_mod
    zero = torch.zeros((), dtype=torch.int64, device=dev)
    score_mod = mask_mod = None
    if fmod is not None:
        try:
            score_mod, mask_mod = fmod.make_mods(N, N, D, dev, P, T)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row['flex_error'] = f'make_mods: {type(e).__name__}: {e}'[:2000]
    flex_mask = lambda qp, kv: mask_mod(zero, zero, qp, kv)  # noqa: E731
    if s in REF:
        ref = REF[s]
        kept = count_kept(lambda qp, kv: ref['mask'](qp, kv, 0, P, T), N, dev)
        if mask_mod is not None:
            try:
                kept_flex = count_kept(flex_mask, N, dev) if fmod.HAS_MASK else N * N
                row['kept_pairs_flex_mask'] = kept_flex
                if kept_flex != kept:
                    log(f'WARNING {s} N={N}: kept pairs {kept} (reference mask) != {kept_flex} (flex mask_mod)')
            except Exception as e:  # noqa: BLE001
                row['flex_mask_count_error'] = f'{type(e).__name__}: {e}'[:500]
        logit_fn = lambda x, qp, kv, h: ref['logit'](x, qp, kv, h, D, P, T)  # noqa: E731
        mask_fn = lambda qp, kv, h: ref['mask'](qp, kv, h, P, T)  # noqa: E731
        row['reference'] = 'independent float64 (bench/run.py REF)'
    else:
        kept = count_kept(flex_mask, N, dev) if fmod.HAS_MASK else N * N
        hz = lambda h: torch.tensor(h, device=dev)  # noqa: E731
        logit_fn = lambda x, qp, kv, h: score_mod(x, zero, hz(h), qp, kv)  # noqa: E731
        mask_fn = lambda qp, kv, h: mask_mod(zero, hz(h), qp, kv)  # noqa: E731
        row['reference'] = 'flex module mods evaluated on float64 scores (not independent)'
    if fmod is not None and fmod.MASK_PER_HEAD:
        log(f'note: {s} mask reads head/batch; kept pairs counted for head 0 only')
    row['kept_pairs'] = kept
    row['density'] = kept / (N * N)
    flops = 4.0 * D * kept * B * H
    ref_o, ref_lse = reference_rows(logit_fn, mask_fn, q, k, v, rows, D)

    # ---- ours: correctness (poisoned outputs), then time ----
    o = torch.full_like(q, math.nan)
    lse = torch.full(q.shape[:3], math.nan, device=dev, dtype=torch.float32)
    row['ours_ok'] = False
    try:
        if kern.fn is None:
            raise RuntimeError(f'{kern.name} was not compiled/loaded (see failures)')
        kern.launch(q, k, v, o, lse, P, T, stream)
        torch.cuda.synchronize()
        row['ours_unwritten_or_nan'] = int(torch.isnan(o).sum()) + int(torch.isnan(lse).sum())
        row['err_ours'], row['err_ours_lse'] = row_errors(o, lse, rows, ref_o, ref_lse)
        row['ours_ok'] = row['err_ours'] <= TOL[dt] and row['ours_unwritten_or_nan'] == 0
        if not row['ours_ok']:
            log(f'FAIL {s} {dt} D={D} N={N}: ours max abs error {row["err_ours"]:.3e} (tolerance {TOL[dt]}), '
                f'{row["ours_unwritten_or_nan"]} NaN/unwritten outputs: not timed')
        else:
            row['ours_kernel'] = kern.launch_for(N, N)[1]['entryPoint']
            row['ours_ms'], row['ours_min_ms'], row['ours_launch_ms'] = time_cuda(lambda: kern.launch(q, k, v, o, lse, P, T, stream), a.warmup, a.repeats)
            row['ours_tflops'] = flops / (row['ours_ms'] * 1e9)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        row['ours_error'] = f'{type(e).__name__}: {e}'[:2000]
        if context_lost(e):
            raise  # the context is gone: nothing after this can run

    # ---- ours through the --target torch module (--torch-module): the call a PyTorch user makes, Python included ----
    if tmod is not None:
        try:
            def torch_module_call():
                with torch.no_grad():
                    return tmod.attention(q, k, v, P, T)
            to, tlse = torch_module_call()
            torch.cuda.synchronize()
            row['err_torch_module'], row['err_torch_module_lse'] = row_errors(to, tlse, rows, ref_o, ref_lse)
            row['torch_module_ok'] = row['err_torch_module'] <= TOL[dt]
            del to, tlse
            if row['torch_module_ok']:
                row['torch_module_ms'], row['torch_module_min_ms'], row['torch_module_launch_ms'] = time_cuda(torch_module_call, a.warmup, a.repeats)
            else:
                log(f'FAIL {s} {dt} D={D} N={N}: the torch module\'s max abs error {row["err_torch_module"]:.3e}: not timed')
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row['torch_module_error'] = f'{type(e).__name__}: {e}'[:2000]
            if context_lost(e):
                raise  # the context is gone: nothing after this can run

    # ---- flex: first call (compile), correctness, then time ----
    if compiled is not None and mask_mod is not None:
        from torch.nn.attention.flex_attention import create_block_mask
        t0 = time.perf_counter()
        bm = create_block_mask(mask_mod, B if fmod.MASK_PER_HEAD else None, H if fmod.MASK_PER_HEAD else None, N, N, device=dev) if fmod.HAS_MASK else None
        torch.cuda.synchronize()
        row['flex_block_mask_s'] = round(time.perf_counter() - t0, 4)
        # A fresh dynamo cache per row: each first call is a full compile, and the
        # guard list that every timed call walks stays one entry long.
        torch._dynamo.reset()
        t0 = time.perf_counter()
        try:
            fo, flse = fmod.attention(q, k, v, P, T, block_mask=bm, kernel=compiled)
        except Exception as e:  # noqa: BLE001
            if getattr(fmod, 'AuxRequest', None) is not None and 'return_aux' in getattr(fmod, 'LSE_REQUEST', {}):
                # The module asks for the LSE through return_aux (torch >= 2.9); should this torch's compiled
                # flex_attention refuse that, fall back to the older return_lse once (recorded).
                log(f'flex module {s}: return_aux failed under torch.compile ({type(e).__name__}: {str(e).splitlines()[0][:300]}); retrying with return_lse')
                row['flex_return_aux_error'] = f'{type(e).__name__}: {e}'[:2000]
                fmod.LSE_REQUEST, fmod.AuxRequest = {'return_lse': True}, None
                t0 = time.perf_counter()
                fo, flse = fmod.attention(q, k, v, P, T, block_mask=bm, kernel=compiled)
            else:
                if s in patched or not hasattr(fmod, '_f32'):
                    raise
                log(f'flex module {s} failed under torch.compile ({type(e).__name__}: {str(e).splitlines()[0][:300]}); '
                    'retrying with a compile-friendly _f32 helper (recorded as flex_patched)')
                row['flex_unpatched_error'] = f'{type(e).__name__}: {e}'[:2000]
                fmod._f32 = compile_friendly_f32
                patched.add(s)
                t0 = time.perf_counter()
                fo, flse = fmod.attention(q, k, v, P, T, block_mask=bm, kernel=compiled)
        torch.cuda.synchronize()
        row['flex_first_call_s'] = round(time.perf_counter() - t0, 3)
        row['flex_patched'] = s in patched
        row['err_flex'], row['err_flex_lse'] = row_errors(fo, flse, rows, ref_o, ref_lse)
        if row.get('ours_ok'):
            row['ours_vs_flex_max_abs'] = float(max((o[b, h, i].float() - fo[b, h, i].float()).abs().max() for b, h, i in rows))
        # timing: mods made once (as a model would hold them), same block mask
        sm, _ = fmod.make_mods(N, N, D, dev, P, T)
        g0, t0 = dynamo_graphs(), time.perf_counter()
        flex_call(compiled, q, k, v, sm, bm)
        torch.cuda.synchronize()
        row['flex_new_closure_call_s'] = round(time.perf_counter() - t0, 4)
        row['flex_new_closure_recompiled'] = None if g0 is None else dynamo_graphs() - g0
        row['flex_ms'], row['flex_min_ms'], row['flex_launch_ms'] = time_cuda(lambda: flex_call(compiled, q, k, v, sm, bm), a.warmup, a.repeats)
        row['flex_tflops'] = flops / (row['flex_ms'] * 1e9)
        if bm is not None and kern is not None and kern.m['analysis'].get('tileTestReadsTables'):
            # A mask that reads tables (document ids) needs a new BlockMask whenever they change (each batch
            # of packed sequences); ours classifies its tiles in the kernel. What a new BlockMask costs:
            row['flex_block_mask_ms'] = time_cuda(lambda: create_block_mask(
                mask_mod, B if fmod.MASK_PER_HEAD else None, H if fmod.MASK_PER_HEAD else None, N, N, device=dev), 2, 10)[0]
        if P and 'flex_new_param' not in comp:
            name, p0 = next(iter(P.items()))
            P2 = {**P, name: p0 * 10 if isinstance(p0, float) else max(1, int(p0) // 2)}
            g0, t0 = dynamo_graphs(), time.perf_counter()
            fmod.attention(q, k, v, P2, T, block_mask=bm, kernel=compiled)
            torch.cuda.synchronize()
            comp['flex_new_param'] = {'row': f'{s}/{dt}/D{D}/N{N}', 'params': P2, 'call_s': round(time.perf_counter() - t0, 4),
                                      'dynamo_graphs_compiled': None if g0 is None else dynamo_graphs() - g0}
        del fo, flse
    if row.get('ours_ms') and row.get('flex_ms'):
        row['ours_over_flex'] = row['flex_ms'] / row['ours_ms']
        if row.get('flex_block_mask_ms') is not None:
            row['ours_over_flex_with_block_mask'] = (row['flex_ms'] + row['flex_block_mask_ms']) / row['ours_ms']


if __name__ == '__main__':
    main()
