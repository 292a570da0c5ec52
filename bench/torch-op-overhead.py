"""What a torch.library custom operator's dispatch costs per eager call, against calling the same Python function
directly: the reason the --target torch module launches its kernel without the operator outside tracing. CPU only
(a function that only allocates its outputs, the arguments of the module's operator), so it runs anywhere with
torch >= 2.4.
    python3 bench/torch-op-overhead.py [--calls 20000]"""
import argparse
import time

import torch


def impl(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, iparams: list[int], fparams: list[float],
         tables: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return q.new_empty(q.shape), q.new_empty(q.shape[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--calls', type=int, default=20000)
    a = ap.parse_args()
    op = torch.library.custom_op('attnc_probe::overhead', impl, mutates_args=())
    q = torch.empty(1, 32, 1, 128)  # a decode call's q
    print(f'torch {torch.__version__}, {a.calls} calls each after 1000 warm-ups:')
    for fn, name in ((impl, 'direct'), (op, 'custom_op')):
        for _ in range(1000):
            fn(q, q, q, [], [10.0], [])
        t = time.perf_counter()
        for _ in range(a.calls):
            fn(q, q, q, [], [10.0], [])
        print(f'  {name:10} {(time.perf_counter() - t) / a.calls * 1e6:.1f} us per call')


if __name__ == '__main__':
    main()
