# The loader half of attnc's `--target torch` modules (src/compiler/render/torch.ts writes the spec's half above
# it and appends this file as it is): NVRTC and the CUDA driver through ctypes, as the Node runtime does through
# koffi (src/runtime/cuda.ts): the same kernel choice (the sm_90a source on compute 9.0, the sm_80 one compiled for
# the GPU's own arch elsewhere), the same cubin cache (sha256 of source, arch and NVRTC version under
# $ATTNC_CACHE_DIR or ~/.cache/attnc/cuda), the same launch rule (the first variant whose conditions hold, Nk <= maxNk
# and Nq >= minNq; one block per SM slot for a persistent kernel). No Python package beyond torch: libnvrtc comes from the nvidia-* wheels
# PyTorch installs, or the loader path, or $CUDA_HOME. Nothing of the spec is in this file: it reads SPEC, DTYPE,
# HEAD_DIM, OP_NAME, PARAMS, INPUTS and KERNELS, which the module defines before it.

# ---------------------------------------------------------------------------------------------------------------
# The loader (the same in every attnc module): NVRTC -> cubin (cached on disk) -> CUDA driver module, on torch's
# current stream of the tensors' device.
# ---------------------------------------------------------------------------------------------------------------
class AttncCudaError(RuntimeError):
    """A CUDA driver or NVRTC call failed (the message names the call and the CUDA error), or no CUDA library."""


def _candidates(names):
    """Library files to try, for each name in turn: the loader's search path, then the lib folders of the nvidia-*
    pip packages PyTorch depends on, then $CUDA_HOME/lib64 (and $CUDA_PATH/lib64)."""
    dirs = []
    try:
        import nvidia  # the namespace package of the nvidia-* wheels
        for base in list(getattr(nvidia, '__path__', [])):
            dirs += sorted(glob.glob(os.path.join(base, '*', 'lib')))
    except ImportError:
        pass
    dirs += [os.path.join(os.environ[env], 'lib64') for env in ('CUDA_HOME', 'CUDA_PATH') if os.environ.get(env)]
    out = []
    for name in names:
        out.append(name)
        if os.sep not in name:
            for d in dirs:
                out += sorted(glob.glob(os.path.join(d, name + '*')), reverse=True)
    return out


def _open_library(what, names, companion=None):
    """The first candidate that loads. A companion (NVRTC's builtins) is loaded first from the same folder where
    there is one: the library opens it by name, which finds it there only if it is on the loader's path."""
    tried = []
    for name in _candidates(names):
        try:
            if companion and os.sep in name:
                for c in sorted(glob.glob(os.path.join(os.path.dirname(name), companion + '*')), reverse=True):
                    try:
                        ctypes.CDLL(c, mode=ctypes.RTLD_GLOBAL)
                        break
                    except OSError:
                        pass
            return ctypes.CDLL(name)
        except OSError:
            tried.append(name)
    raise AttncCudaError(f'{SPEC}: {what} not found (tried {", ".join(tried)})')


class _Nvrtc:
    """NVRTC: CUDA-C source -> cubin for one arch."""

    def __init__(self):
        # The NVRTC of torch's own CUDA major first: its cubins are what the driver beside that torch accepts.
        majors = ['13', '12']
        if (torch.version.cuda or '').split('.')[0] in majors:
            majors.remove(torch.version.cuda.split('.')[0])
            majors.insert(0, torch.version.cuda.split('.')[0])
        lib = _open_library('NVRTC (libnvrtc)', [f'libnvrtc.so.{m}' for m in majors] + ['libnvrtc.so'], 'libnvrtc-builtins.so')
        vp, i, sz, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
        sig = {
            'nvrtcVersion': [ctypes.POINTER(i), ctypes.POINTER(i)],
            'nvrtcCreateProgram': [ctypes.POINTER(vp), s, s, i, ctypes.POINTER(s), ctypes.POINTER(s)],
            'nvrtcCompileProgram': [vp, i, ctypes.POINTER(s)],
            'nvrtcGetProgramLogSize': [vp, ctypes.POINTER(sz)],
            'nvrtcGetProgramLog': [vp, s],
            'nvrtcGetCUBINSize': [vp, ctypes.POINTER(sz)],
            'nvrtcGetCUBIN': [vp, s],
            'nvrtcDestroyProgram': [ctypes.POINTER(vp)],
        }
        for name, args in sig.items():
            getattr(lib, name).argtypes = args
            getattr(lib, name).restype = i
        lib.nvrtcGetErrorString.argtypes = [i]
        lib.nvrtcGetErrorString.restype = s
        major, minor = i(), i()
        self._check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), 'nvrtcVersion')
        self.lib, self.version = lib, f'{major.value}.{minor.value}'

    @staticmethod
    def _check(lib, rc, what, log=''):
        if rc != 0:
            raise AttncCudaError(f'{SPEC}: {what}: {(lib.nvrtcGetErrorString(rc) or b"NVRTC error %d" % rc).decode()}' + (f'\n{log}' if log else ''))

    def compile(self, source, arch):
        lib = self.lib
        prog = ctypes.c_void_p()
        self._check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b'attnc_kernel.cu', 0, None, None), 'nvrtcCreateProgram')
        try:
            opts = [f'--gpu-architecture={arch}'.encode(), b'--std=c++17']
            rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
            if rc != 0:
                n = ctypes.c_size_t()
                lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
                log = ctypes.create_string_buffer(max(1, n.value))
                lib.nvrtcGetProgramLog(prog, log)
                self._check(lib, rc, f'NVRTC compile for {arch}', log.value.decode(errors='replace'))
            n = ctypes.c_size_t()
            self._check(lib, lib.nvrtcGetCUBINSize(prog, ctypes.byref(n)), 'nvrtcGetCUBINSize')
            cubin = ctypes.create_string_buffer(n.value)
            self._check(lib, lib.nvrtcGetCUBIN(prog, cubin), 'nvrtcGetCUBIN')
            return cubin.raw
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(prog))


class _Driver:
    """The CUDA driver calls the module needs, in the primary context (the one PyTorch uses)."""
    SM_COUNT, CC_MAJOR, CC_MINOR, SMEM_OPTIN = 16, 75, 76, 97
    FUNC_MAX_DYNAMIC_SMEM, FUNC_SMEM_CARVEOUT = 8, 9

    def __init__(self):
        lib = _open_library('the CUDA driver (libcuda)', ['libcuda.so.1', '/usr/lib/x86_64-linux-gnu/libcuda.so.1', '/usr/local/nvidia/lib64/libcuda.so.1'])
        vp, ui, i = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int
        sig = {
            'cuInit': [ui],
            'cuDeviceGet': [ctypes.POINTER(i), i],
            'cuDeviceGetAttribute': [ctypes.POINTER(i), i, i],
            'cuDevicePrimaryCtxRetain': [ctypes.POINTER(vp), i],
            'cuCtxSetCurrent': [vp],
            'cuModuleLoadData': [ctypes.POINTER(vp), ctypes.c_char_p],
            'cuModuleGetFunction': [ctypes.POINTER(vp), vp, ctypes.c_char_p],
            'cuFuncSetAttribute': [vp, i, i],
            'cuLaunchKernel': [vp, ui, ui, ui, ui, ui, ui, ui, vp, ctypes.POINTER(vp), ctypes.POINTER(vp)],
            'cuGetErrorName': [i, ctypes.POINTER(ctypes.c_char_p)],
        }
        for name, args in sig.items():
            getattr(lib, name).argtypes = args
            getattr(lib, name).restype = i
        self.lib = lib
        self.check(lib.cuInit(0), 'cuInit')

    def check(self, rc, what):
        if rc != 0:
            name = ctypes.c_char_p()
            self.lib.cuGetErrorName(rc, ctypes.byref(name))
            raise AttncCudaError(f'{SPEC}: {what}: {(name.value or b"CUDA error %d" % rc).decode()}')

    def device(self, ordinal):
        """(primary context, compute capability, SM count, opt-in shared memory per block) of a device."""
        lib, dev = self.lib, ctypes.c_int()
        self.check(lib.cuDeviceGet(ctypes.byref(dev), ordinal), 'cuDeviceGet')

        def attr(a):
            v = ctypes.c_int()
            self.check(lib.cuDeviceGetAttribute(ctypes.byref(v), a, dev), 'cuDeviceGetAttribute')
            return v.value
        ctx = ctypes.c_void_p()
        self.check(lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), 'cuDevicePrimaryCtxRetain')
        return ctx, (attr(self.CC_MAJOR), attr(self.CC_MINOR)), attr(self.SM_COUNT), attr(self.SMEM_OPTIN)


_LOCK = threading.Lock()
_STATE = {}


def _cache_dir():
    return os.path.join(os.environ.get('ATTNC_CACHE_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'attnc'), 'cuda')


def _nvrtc():
    if 'nvrtc' not in _STATE:
        _STATE['nvrtc'] = _Nvrtc()
    return _STATE['nvrtc']


def _arch_for(cc):
    """The arch to build for a compute capability: sm_90a on Hopper (9.0), else the GPU's own (sm_80 source)."""
    if cc == (9, 0):
        return 'sm_90a'
    if DTYPE != torch.float32 and cc < (8, 0):
        raise AttncCudaError(f'{SPEC}: {DTYPE} kernels need compute capability 8.0 or later; this GPU has {cc[0]}.{cc[1]}')
    return f'sm_{cc[0]}{cc[1]}'


def _kernel(arch):
    """The kernel (source, launches, arguments) built for an arch: the sm_90a one for sm_90a, the sm_80 one for any other."""
    return KERNELS['sm_90a' if arch == 'sm_90a' else 'sm_80']


def _backward(arch):
    """The backward kernels built for an arch (as _kernel): the sm_90a ones (wgmma) for sm_90a, the sm_80 ones elsewhere."""
    return None if BACKWARD is None else BACKWARD['sm_90a' if arch == 'sm_90a' else 'sm_80']


def compile_cubin(arch, backward=False):
    """The cubin of this module's kernel (with backward=True: its backward kernels) for an arch ('sm_90a', 'sm_80',
    'sm_89', ...), from the cache or NVRTC. Needs NVRTC but no GPU: a build machine can fill the cache ahead of time."""
    with _LOCK:
        kernel = _backward(arch) if backward else _kernel(arch)
        if kernel is None:
            raise AttncCudaError(f'{SPEC}: this module has no backward kernels ({DTYPE}, head_dim {HEAD_DIM})')
        nvrtc = _nvrtc()
        key = hashlib.sha256(f'{kernel["source"]}\0{arch}\0{nvrtc.version}'.encode()).hexdigest()
        path = os.path.join(_cache_dir(), f'{key}.cubin')
        try:
            with open(path, 'rb') as f:
                return f.read()
        except OSError:
            pass
        cubin = nvrtc.compile(kernel['source'], arch)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f'{path}.{os.getpid()}.tmp'
            with open(tmp, 'wb') as f:
                f.write(cubin)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache is not an error
        return cubin


def _loaded(ordinal):
    """This device's context, kernel functions and limits, loaded once per process."""
    with _LOCK:
        if 'driver' not in _STATE:
            _STATE['driver'] = _Driver()
        drv = _STATE['driver']
        if ordinal in _STATE:
            return drv, _STATE[ordinal]
        ctx, cc, sms, smem_optin = drv.device(ordinal)
        arch = _arch_for(cc)
    cubin = compile_cubin(arch)
    with _LOCK:
        if ordinal in _STATE:
            return drv, _STATE[ordinal]
        kernel = _kernel(arch)
        module, fns = _load_module(drv, ctx, cubin, kernel['launches'], smem_optin)
        state = {'ctx': ctx, 'arch': arch, 'kernel': kernel, 'fns': fns, 'module': module, 'sms': sms, 'smem_optin': smem_optin}
        _STATE[ordinal] = state
        return drv, state


def _load_module(drv, ctx, cubin, launches, smem_optin):
    """A cubin loaded in ctx, and its kernels in the order of `launches` (entry, smem[, blocksPerSm]), each allowed
    its dynamic shared memory."""
    drv.check(drv.lib.cuCtxSetCurrent(ctx), 'cuCtxSetCurrent')
    module = ctypes.c_void_p()
    drv.check(drv.lib.cuModuleLoadData(ctypes.byref(module), cubin), 'cuModuleLoadData')
    fns = []
    for launch in launches:
        fn = ctypes.c_void_p()
        drv.check(drv.lib.cuModuleGetFunction(ctypes.byref(fn), module, launch['entry'].encode()), f'cuModuleGetFunction({launch["entry"]})')
        if launch['smem'] > smem_optin:
            raise AttncCudaError(f'{SPEC}: kernel {launch["entry"]} needs {launch["smem"]} bytes of shared memory, the device allows {smem_optin}')
        drv.check(drv.lib.cuFuncSetAttribute(fn, _Driver.FUNC_MAX_DYNAMIC_SMEM, launch['smem']), 'cuFuncSetAttribute(max dynamic shared memory)')
        if launch.get('blocksPerSm', 1) > 1:  # a kernel built for 2 blocks per SM needs the whole carveout as shared memory
            drv.check(drv.lib.cuFuncSetAttribute(fn, _Driver.FUNC_SMEM_CARVEOUT, 100), 'cuFuncSetAttribute(shared memory carveout)')
        fns.append(fn)
    return module, fns


def _loaded_backward(ordinal):
    """This device's backward kernels (BACKWARD for its arch, launched in order), loaded once per process on first use."""
    drv, st = _loaded(ordinal)
    key = ('backward', ordinal)
    with _LOCK:
        if key in _STATE:
            return drv, _STATE[key]
    cubin = compile_cubin(st['arch'], backward=True)
    with _LOCK:
        if key in _STATE:
            return drv, _STATE[key]
        kernels = _backward(st['arch'])
        module, fns = _load_module(drv, st['ctx'], cubin, kernels['stages'], st['smem_optin'])
        _STATE[key] = {'ctx': st['ctx'], 'fns': fns, 'module': module, 'kernels': kernels, 'sms': st['sms']}
        return drv, _STATE[key]


def prepare(device=None):
    """Compiles (or reads from the cache) and loads the kernel for a CUDA device now (default: the current one),
    rather than in the first call: before capturing a CUDA graph, say, since loading a module is not a stream
    operation. Returns the arch it was built for."""
    device = torch.device('cuda', torch.cuda.current_device()) if device is None else torch.device(device)
    if device.type != 'cuda':
        raise ValueError(f'{SPEC}: prepare() takes a CUDA device, got {device}')
    with torch.cuda.device(device):
        return _loaded(device.index if device.index is not None else torch.cuda.current_device())[1]['arch']


def _launch(q, k, v, o, lse, sizes, params, tables):
    drv, st = _loaded(q.device.index if q.device.index is not None else torch.cuda.current_device())
    kernel = st['kernel']
    i = next((j for j, x in enumerate(kernel['launches']) if j > 0 and (x['maxNk'] is None or sizes['Nk'] <= x['maxNk'])
              and (x['minNq'] is None or sizes['Nq'] >= x['minNq'])), 0)
    launch, fn = kernel['launches'][i], st['fns'][i]
    B, Hq, Nq = sizes['B'], sizes['Hq'], sizes['Nq']
    items = -(-Nq // launch['bm']) * Hq * B
    grid = (min(items, st['sms'] * launch['blocksPerSm']), 1, 1) if launch['persistent'] else (-(-Nq // launch['bm']), Hq, B)
    if grid[1] > 65535 or grid[2] > 65535:
        raise ValueError(f'{SPEC}: grid {grid} exceeds 65535 in y or z (Hq = {Hq}, B = {B})')
    args = _kernel_args(kernel['args'], {'Q': q, 'K': k, 'V': v, 'O': o, 'LSE': lse}, sizes, params, tables)
    drv.check(drv.lib.cuCtxSetCurrent(st['ctx']), 'cuCtxSetCurrent')
    _launch_one(drv, fn, grid, launch['block'], launch['smem'], args, q.device, launch['entry'])


def _kernel_args(spec_args, tensors, sizes, params, tables):
    """A kernel's arguments in ABI order (role, name[, type]): device pointers, sizes, params, tables."""
    args = []
    for a in spec_args:
        role, name = a[0], a[1]
        if role == 'tensor':
            args.append(ctypes.c_uint64(tensors[name].data_ptr()))
        elif role == 'size':
            args.append(ctypes.c_int32(sizes[name]))
        elif role == 'param':
            args.append(ctypes.c_int32(params[name]) if a[2] == 'i32' else ctypes.c_float(params[name]))
        else:
            args.append(ctypes.c_uint64(tables[name].data_ptr()))
    return args


def _launch_one(drv, fn, grid, block, smem, args, device, entry):
    """One launch on torch's current stream of the device."""
    ptrs = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(x), ctypes.c_void_p) for x in args])
    stream = torch.cuda.current_stream(device).cuda_stream
    drv.check(drv.lib.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem,
                                     ctypes.c_void_p(stream or None), ptrs, None), f'cuLaunchKernel({entry})')


def _run_backward(q, k, v, o, lse, do, values, tables):
    """dQ, dK, dV of checked, contiguous inputs: the backward launches in order (each reads the scratch the ones
    before it wrote: Delta, and dQacc for the single pass)."""
    drv, st = _loaded_backward(q.device.index if q.device.index is not None else torch.cuda.current_device())
    B, Hq, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    sizes = {'B': B, 'Hq': Hq, 'Hkv': Hkv, 'Nq': Nq, 'Nk': Nk}
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(k)
    tensors = {'Q': q, 'K': k, 'V': v, 'O': o, 'LSE': lse, 'dO': do, 'dQ': dq, 'dK': dk, 'dV': dv}
    dims = dict(sizes, D=D)
    for name, shape in st['kernels']['scratch']:
        tensors[name] = torch.empty([dims[x] for x in shape], dtype=torch.float32, device=q.device)
    args = _kernel_args(st['kernels']['args'], tensors, sizes, values, tables)
    # A stage's blocks own bm query rows of a query head, or bm keys of a kv head; a persistent stage's blocks walk its
    # tiles, one block per SM.
    grids = [(-(-Nq // x['bm']), Hq, B) if x['over'] == 'queries' else (-(-Nk // x['bm']), Hkv, B) for x in st['kernels']['stages']]
    grids = [(min(g[0] * g[1] * g[2], st['sms']), 1, 1) if x['persistent'] else g for x, g in zip(st['kernels']['stages'], grids)]
    if max(Hq, B) > 65535:
        raise ValueError(f'{SPEC}: grid exceeds 65535 in y or z (Hq = {Hq}, B = {B})')
    with torch.cuda.device(q.device):
        drv.check(drv.lib.cuCtxSetCurrent(st['ctx']), 'cuCtxSetCurrent')
        for stage, fn, grid in zip(st['kernels']['stages'], st['fns'], grids):
            if grid[0] > 0:
                _launch_one(drv, fn, grid, stage['block'], stage['smem'], args, q.device, stage['entry'])
    return dq, dk, dv


class _AttentionFunction(torch.autograd.Function):
    """The forward kernel, and the backward kernels for dQ, dK, dV (P recomputed from the LSE). The LSE output
    carries no gradient (marked non-differentiable)."""

    @staticmethod
    def forward(ctx, q, k, v, values, run, *tables):
        o, lse = run(q, k, v, values, tables)
        ctx.save_for_backward(q, k, v, o, lse, *tables)
        ctx.values = values
        ctx.mark_non_differentiable(lse)
        return o, lse

    @staticmethod
    def backward(ctx, do, _dlse):
        q, k, v, o, lse, *tables = ctx.saved_tensors
        dq, dk, dv = _run_backward(q, k, v, o, lse, do.contiguous(), ctx.values, dict(zip(INPUTS, tables)))
        return (dq, dk, dv, None, None) + (None,) * len(tables)


def _check_inputs(q, k, v, params, tables):
    """Shapes, dtypes, params and tables, checked before anything reaches the GPU; returns (params, tables)."""
    for name, t in (('q', q), ('k', k), ('v', v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'{SPEC}: {name} must be a torch.Tensor, got {type(t).__name__}')
        if t.dim() != 4:
            raise ValueError(f'{SPEC}: {name} must be 4-D ([B, H, N, {HEAD_DIM}]), got shape {tuple(t.shape)}')
        if t.dtype != DTYPE:
            raise TypeError(f'{SPEC}: this module\'s kernel takes {DTYPE}; {name} is {t.dtype} (compile the spec again with --dtype for another)')
        if t.shape[3] != HEAD_DIM:
            raise ValueError(f'{SPEC}: this module\'s kernel has head_dim {HEAD_DIM}; {name} has {t.shape[3]} (compile again with --head-dim)')
    B, Hq, Nq, _ = q.shape
    _, Hkv, Nk, _ = k.shape
    if tuple(v.shape) != tuple(k.shape) or k.shape[0] != B:
        raise ValueError(f'{SPEC}: k and v must both be [B, Hkv, Nk, D] with the B of q; got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}')
    if Hkv == 0 or Hq % Hkv != 0:
        raise ValueError(f'{SPEC}: the query heads ({Hq}) must be a multiple of the key/value heads ({Hkv})')
    if max(B * Hq * Nq * HEAD_DIM, B * Hkv * Nk * HEAD_DIM) >= 2 ** 31:
        raise ValueError(f'{SPEC}: tensors of 2^31 elements or more are not supported')
    sizes = {'B': B, 'Hq': Hq, 'Hkv': Hkv, 'Nq': Nq, 'Nk': Nk}
    given = dict(params or {})
    unknown = sorted(set(given) - set(PARAMS))
    if unknown:
        raise ValueError(f'{SPEC}: unknown params {unknown}; the spec has {sorted(PARAMS) or "none"}')
    values = {}
    for name, (kind, default) in PARAMS.items():
        x = given.get(name, default)
        if isinstance(x, torch.Tensor):
            x = x.item()
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f'{SPEC}: param {name} must be a number, got {type(x).__name__}')
        if kind == 'i32':
            if x != int(x) or not -2 ** 31 <= x < 2 ** 31:
                raise ValueError(f'{SPEC}: param {name} is i32, got {x}')
            x = int(x)
        values[name] = x if kind == 'i32' else float(x)
    given = dict(tables or {})
    unknown = sorted(set(given) - set(INPUTS))
    if unknown:
        raise ValueError(f'{SPEC}: unknown tables {unknown}; the spec has {sorted(INPUTS) or "none"}')
    out = {}
    for name, (elem, axis, size) in INPUTS.items():
        if name not in given:
            raise ValueError(f'{SPEC}: table {name} ({elem}[{axis}]) was not given')
        t = given[name]
        if elem == 'i32' and isinstance(t, torch.Tensor) and t.is_floating_point():
            raise TypeError(f'{SPEC}: table {name} is i32; got a {t.dtype} tensor')
        t = torch.as_tensor(t, dtype=torch.int32 if elem == 'i32' else torch.float32, device=q.device).contiguous()
        if t.dim() != 1 or t.shape[0] != sizes[size]:
            raise ValueError(f'{SPEC}: table {name} is {elem}[{axis}], so it needs {sizes[size]} values ({size}); got shape {tuple(t.shape)}')
        out[name] = t
    if q.device.type != 'cuda' or k.device != q.device or v.device != q.device:
        raise ValueError(f'{SPEC}: q, k and v must be on one CUDA device; got {q.device}, {k.device}, {v.device}')
    if BACKWARD is None and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        raise RuntimeError(f'{SPEC}: this module has no backward kernels for {DTYPE} at head_dim {HEAD_DIM} (f16 and bf16 up to '
                           f'128 have them) and would drop the gradient; call it under torch.no_grad() or torch.inference_mode(), '
                           f'or train with the FlexAttention module of the same spec (--target flex)')
    return values, out


def _run(q, k, v, iparams, fparams, tables):
    """The kernel on checked, contiguous inputs: params by kind in PARAMS' order, tables in INPUTS' order."""
    B, Hq, Nq, _ = q.shape
    sizes = {'B': B, 'Hq': Hq, 'Hkv': k.shape[1], 'Nq': Nq, 'Nk': k.shape[2]}
    ints, floats = iter(iparams), iter(fparams)
    values = {name: next(ints) if kind == 'i32' else next(floats) for name, (kind, _) in PARAMS.items()}
    o = torch.empty((B, Hq, Nq, HEAD_DIM), dtype=DTYPE, device=q.device)
    lse = torch.empty((B, Hq, Nq), dtype=torch.float32, device=q.device)
    if o.numel() > 0:
        with torch.cuda.device(q.device):
            _launch(q, k, v, o, lse, sizes, values, dict(zip(INPUTS, tables)))
    return o, lse


def _register_op():
    """The kernel as a PyTorch custom operator (torch >= 2.4), so that torch.compile and FX tracing see one opaque
    op with known output shapes instead of breaking the graph at ctypes; None on older torch. One name per
    artifact: a second copy of this module reuses the operator the first registered."""
    if not hasattr(torch, 'library') or not hasattr(torch.library, 'custom_op'):
        return None
    namespace = getattr(torch.ops, 'attnc')
    if hasattr(namespace, OP_NAME):
        return getattr(namespace, OP_NAME)

    def impl(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, iparams: list[int], fparams: list[float],
             tables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return _run(q, k, v, iparams, fparams, tables)

    op = torch.library.custom_op(f'attnc::{OP_NAME}', impl, mutates_args=())

    @op.register_fake
    def _(q, k, v, iparams, fparams, tables):
        B, Hq, Nq, _ = q.shape
        return q.new_empty((B, Hq, Nq, HEAD_DIM)), q.new_empty((B, Hq, Nq), dtype=torch.float32)
    return op


_OP = _register_op()


def attention(q, k, v, params=None, tables=None):
    """Runs the kernel on torch's current stream; returns (out, lse).

    q [B, Hq, Nq, D], k and v [B, Hkv, Nk, D] on one CUDA device, of this module's dtype and head_dim, Hq a multiple
    of Hkv; params and tables by their names in the spec (params default to the spec's values). out is
    [B, Hq, Nq, D] of q's dtype, lse [B, Hq, Nq] float32, the natural-log logsumexp of each row's logits. The first
    call compiles the kernel with NVRTC for the GPU (then cached on disk) and loads it; later ones only launch.
    Traced (torch.compile, make_fx), the kernel is one custom operator (torch.ops.attnc.<OP_NAME>)."""
    values, tabs = _check_inputs(q, k, v, params, tables)
    iparams = [values[name] for name, (kind, _) in PARAMS.items() if kind == 'i32']
    fparams = [values[name] for name, (kind, _) in PARAMS.items() if kind != 'i32']
    # The operator where something traces (torch.compile, or tensor subclasses such as make_fx's fake tensors);
    # eagerly on plain tensors the kernel directly, without the operator's dispatch (bench/torch-op-overhead.py:
    # 17.5 against 4.3 us a call on a CPU, torch 2.13).
    traced = _OP is not None and (type(q) is not torch.Tensor or torch.compiler.is_compiling())
    run = _OP if traced else _run
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    table_list = [tabs[name] for name in INPUTS]
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        # Gradients: the same forward kernel, then the backward kernels from o.backward(...) (dQ, dK, dV).
        return _AttentionFunction.apply(q, k, v, values, lambda q, k, v, _, t: run(q, k, v, iparams, fparams, list(t)), *table_list)
    return run(q, k, v, iparams, fparams, table_list)
