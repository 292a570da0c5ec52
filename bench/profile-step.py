#!/usr/bin/env python3
"""One spec's training step through our torch module, a few times, for a profiler to catch (no timing, no Flex).

Where a training step's time goes, by kernel and inside one, on the GPU machine (after bench/prepare.sh here):

  ncu --target-processes all -k regex:attnc_ --launch-skip 8 --launch-count 4 --section SpeedOfLight \\
    python3 bench/profile-step.py --spec causal --D 128          # each launch of one step: forward, prep, dK/dV, dQ store
  ncu --target-processes all -k regex:bwd_dkdv --launch-skip 2 --launch-count 1 --set full --import-source no \\
    -o $OUT/dkdv python3 bench/profile-step.py --spec causal --D 128 && ncu -i $OUT/dkdv.ncu-rep --page details

Inputs as bench/train.py's (B*N = 32768 tokens, H = 16, bf16 unless --dtype), the kernels its default module
carries (bench/build/torch/<spec>_<dtype>_d<D>.py).
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import load_module, make_tables, param_defaults  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--spec', default='causal')
    ap.add_argument('--D', type=int, default=128)
    ap.add_argument('--N', type=int, default=16384)
    ap.add_argument('--dtype', default='bf16', choices=['bf16', 'f16'])
    ap.add_argument('--steps', type=int, default=4)
    a = ap.parse_args()
    dev, dt = 'cuda', {'bf16': torch.bfloat16, 'f16': torch.float16}[a.dtype]
    name = f'{a.spec}_{a.dtype}_d{a.D}'
    tmod = load_module(os.path.join(HERE, 'build', 'torch', f'{name}.py'))
    manifest = json.load(open(os.path.join(HERE, 'build', 'cuda', f'{a.spec}.{a.dtype}.d{a.D}.manifest.json')))
    B, H = max(1, 32768 // a.N), 16
    P, T = param_defaults(manifest), make_tables(manifest, a.N, H, dev)
    gen = torch.Generator(device=dev).manual_seed(a.N + a.D)
    q, k, v, do = (torch.randn((B, H, a.N, a.D), generator=gen, device=dev, dtype=dt) for _ in range(4))
    leaves = [x.requires_grad_(True) for x in (q, k, v)]
    for _ in range(a.steps):
        for x in leaves:
            x.grad = None
        o = tmod.attention(*leaves, P, T)[0]
        o.backward(do)
    torch.cuda.synchronize()
    finite = all(bool(torch.isfinite(x.grad).all()) for x in leaves)
    print(f'{name} B={B} H={H} N={a.N}: {a.steps} steps, gradients finite: {finite}')
    sys.exit(0 if finite else 1)


if __name__ == '__main__':
    main()
