"""The torch backend's worker (src/runtime/torch-module-backend.ts): runs attnc's --target torch modules from
PyTorch for `attnc check --backend torch`, the differential fuzzer and tests/torch. One process, torch imported
once. First line out: {"ok": true, "name", "cc", "torch", "smemOptin"} or {"ok": false, "why"}. Then, per line in:
{"module": PATH, "dir": DIR, "params": {...}, "tables": [NAME...]}, DIR holding q.npy, k.npy, v.npy (float32) and
t<i>.npy per table (in the order of "tables"); out: {"ok": true} with o.npy (float32) and lse.npy written to DIR,
or {"ok": false, "error": "..."}. With "backward": true, DIR also holds do.npy, and the module's autograd writes dq.npy,
dk.npy and dv.npy (o.backward(dO)) instead."""
import importlib.util
import json
import os
import sys


def reply(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001
    reply({'ok': False, 'why': f'{sys.executable} has no torch or numpy ({type(e).__name__}: {e})'})
    sys.exit(0)
if not torch.cuda.is_available():
    reply({'ok': False, 'why': f'torch {torch.__version__} finds no CUDA device'})
    sys.exit(0)
props = torch.cuda.get_device_properties(0)
reply({'ok': True, 'name': props.name, 'cc': [props.major, props.minor], 'torch': torch.__version__,
       'smemOptin': int(getattr(props, 'shared_memory_per_block_optin', 0))})

modules = {}
dev = torch.device('cuda', 0)


def module(path):
    if path not in modules:
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        m.prepare(dev)  # compiled and loaded ahead of the first call, as a user would before capturing a CUDA graph
        modules[path] = m
    return modules[path]


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        req = json.loads(line)
        m = module(req['module'])
        d = req['dir']
        q, k, v = (torch.from_numpy(np.load(os.path.join(d, f'{x}.npy'))).to(dev, m.DTYPE) for x in 'qkv')
        tables = {name: torch.from_numpy(np.load(os.path.join(d, f't{i}.npy'))) for i, name in enumerate(req['tables'])}
        # Poison what the module's outputs will likely get from torch's caching allocator: an element the kernel
        # does not write then reads NaN (a best effort: the allocator need not hand out the same blocks).
        poison = [torch.full(q.shape, float('nan'), dtype=m.DTYPE, device=dev), torch.full(q.shape[:3], float('nan'), device=dev)]
        del poison
        if req.get('backward'):
            # The module's autograd, as a user trains with it: dQ, dK, dV from o.backward(dO).
            for t in (q, k, v):
                t.requires_grad_(True)
            do = torch.from_numpy(np.load(os.path.join(d, 'do.npy'))).to(dev, m.DTYPE)
            o, lse = m.attention(q, k, v, params=req['params'], tables=tables)
            o.backward(do)
            torch.cuda.synchronize()
            for name, t in (('dq', q), ('dk', k), ('dv', v)):
                np.save(os.path.join(d, f'{name}.npy'), t.grad.float().cpu().numpy())
        else:
            with torch.no_grad():
                o, lse = m.attention(q, k, v, params=req['params'], tables=tables)
            torch.cuda.synchronize()
            np.save(os.path.join(d, 'o.npy'), o.float().cpu().numpy())
            np.save(os.path.join(d, 'lse.npy'), lse.cpu().numpy())
        reply({'ok': True})
    except Exception as e:  # noqa: BLE001
        reply({'ok': False, 'error': f'{type(e).__name__}: {e}'[:4000]})
