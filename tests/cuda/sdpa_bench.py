# Peer timing on the device: PyTorch SDPA causal (flash backend), same shapes
# and FLOP count as scripts/cuda-bench.ts. python3 tests/cuda/sdpa_bench.py 2x16384 8x4096
import sys, torch
import torch.nn.functional as F
H, D = 16, 128
for spec in sys.argv[1:] or ['2x16384']:
    B, N = map(int, spec.split('x'))
    q, k, v = (torch.randn(B, H, N, D, device='cuda', dtype=torch.bfloat16) for _ in range(3))
    for _ in range(3): F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.cuda.synchronize()
    ts = []
    for _ in range(20):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); F.scaled_dot_product_attention(q, k, v, is_causal=True); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort(); ms = ts[len(ts) // 2]
    print(f'SDPA causal bf16 B{B} H{H} N{N} D{D}: median {ms:.3f} ms  {4*B*H*N*N*D/2/ms/1e9:.1f} TFLOP/s')
