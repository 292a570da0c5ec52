"""Runs attnc torch modules on the GPU for tests/torch/torch-target.test.ts: one process for every case (torch
imports once). cases.json lists {module, dir, params, tables}; each dir holds q.npy, k.npy, v.npy (float32) and
t<i>.npy per table; o.npy (float32) and lse.npy come back in the same dir. Exit 1 after the first failing call."""
import importlib.util
import json
import os
import sys

import numpy as np
import torch

modules = {}


def module(path):
    if path not in modules:
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        modules[path] = m
    return modules[path]


with open(sys.argv[1]) as f:
    cases = json.load(f)
dev = torch.device('cuda')
for case in cases:
    m = module(case['module'])
    d = case['dir']
    q, k, v = (torch.from_numpy(np.load(os.path.join(d, f'{x}.npy'))).to(dev, m.DTYPE) for x in 'qkv')
    tables = {name: torch.from_numpy(np.load(os.path.join(d, f't{i}.npy'))) for i, name in enumerate(case['tables'])}
    with torch.no_grad():
        o, lse = m.attention(q, k, v, params=case['params'], tables=tables)
    torch.cuda.synchronize()
    np.save(os.path.join(d, 'o.npy'), o.float().cpu().numpy())
    np.save(os.path.join(d, 'lse.npy'), lse.cpu().numpy())
print(f'ran {len(cases)} calls on {torch.cuda.get_device_name()}')
