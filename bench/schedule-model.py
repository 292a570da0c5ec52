"""A model of how evenly the persistent Hopper kernel's static item walk spreads work over the SMs
(render/cuda-wgmma-ws.ts), for the bench's shapes: no GPU needed, numpy only.

An item (query block, head, batch) costs its live KV tiles plus OVERHEAD tiles (prologue and epilogue).
G blocks (one per SM) take items heaviest first (query block m_blocks - 1 - i / (Hq * B)); block b takes
items b, b + G, b + 2G, ... ("round robin") or, with the snake order, the reverse position in odd rounds.
For comparison, "dynamic" is a plain grid handed to the next free SM in launch order, each item paying its
overhead unhidden (OVERHEAD counted twice: the persistent kernel overlaps one item's prologue with the last
one's tail). The figure is the busiest SM's load over the mean load: 1.000 is perfectly even.
Tiles are classified exactly (not by the kernels' interval test); document ids as bench/run.py draws them.

    python3 bench/schedule-model.py [--n 16384] [--b 2] [--h 16] [--sms 132] [--overhead 1]
"""
import argparse
import heapq
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument('--n', type=int, default=16384)
ap.add_argument('--b', type=int, default=2)
ap.add_argument('--h', type=int, default=16)
ap.add_argument('--sms', type=int, default=132)
ap.add_argument('--overhead', type=float, default=1.0)
ap.add_argument('--window', type=int, default=1024)
a = ap.parse_args()
N, B, H, G, OV, BM = a.n, a.b, a.h, a.sms, a.overhead, 128
M = N // BM

# Document ids exactly as bench/run.py's make_tables (one table for every batch).
rng = np.random.default_rng(1000 + N)
ids = np.repeat(np.arange(N), rng.integers(max(1, N // 16), max(2, N // 4) + 1, size=N))[:N]
blk = ids.reshape(M, BM)
lo, hi = blk.min(1), blk.max(1)


def live_tiles(spec, m):
    if spec == 'causal':
        return m + 1, 1
    if spec == 'window':  # causal and q - kv < W: tiles j with some pair inside
        first = max(0, (m * BM - a.window + 1) // BM)
        return m + 1 - first, 2 if first > 0 else 1
    js = [j for j in range(m + 1) if not (hi[j] < lo[m] or lo[j] > hi[m])]
    partial = sum(1 for j in js if not (j < m and lo[m] == hi[m] == lo[j] == hi[j]))
    return len(js), partial


for spec in ('causal', 'window', 'document'):
    tiles = [live_tiles(spec, m) for m in range(M)]
    cost = [t + OV for t, _ in tiles]
    n_items = M * H * B
    item_m = [M - 1 - i // (H * B) for i in range(n_items)]
    loads = {'round robin': [0.0] * G, 'snake': [0.0] * G}
    for i, m in enumerate(item_m):
        r, p = divmod(i, G)
        loads['round robin'][p] += cost[m]
        loads['snake'][p if r % 2 == 0 else G - 1 - p] += cost[m]
    mean = sum(cost[m] for m in item_m) / G
    heap = [(0.0, s) for s in range(G)]
    for _ in range(B * H):
        for x in range(M):
            t, s = heapq.heappop(heap)
            heapq.heappush(heap, (t + cost[M - 1 - x] + OV, s))
    dynamic = max(t for t, _ in heap)
    live = sum(t for t, _ in tiles)
    part = sum(p for _, p in tiles)
    print(f'{spec:9s} live tiles/row {live / M:5.1f}, partial {part / live:5.1%};  busiest SM / mean: '
          f'round robin {max(loads["round robin"]) / mean:.3f}, snake {max(loads["snake"]) / mean:.3f}, '
          f'dynamic (overhead unhidden) {dynamic / mean:.3f}')
