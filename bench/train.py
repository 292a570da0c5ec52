"""A training step (forward + backward) of attnc's torch module against FlexAttention's, on the GPU machine.

    python3 bench/train.py --out $OUT [--specs a,b] [--dims 64,128] [--lens 4096,16384] [--dtype bf16] [--budget-s 240]
                           [--variants tables,async-stats,tables+async-stats]

Per (spec, D, N), B*N = 32768 tokens, H = 16: the same q, k, v (requires_grad) and dO for both; a step is
`o = attention(q, k, v); o.backward(dO)`. Ours: bench/build/torch/<spec>_<dtype>_d<D>.py (attnc's forward kernel, then
its two backward launches through autograd). Flex: bench/build/flex/<spec>_flex.py's mods with torch.compile'd
flex_attention (forward and backward compiled) and create_block_mask of its mask_mod. Before timing, ours' dQ, dK, dV
must agree with Flex's (max abs difference over the largest magnitude, per tensor); rows that do not are not timed.
TFLOP/s count the kept pairs only: forward 4 D (kept) B H, backward 2.5 times that (FlashAttention's convention).
--variants: backward kernel variants under evaluation (render/cuda-bwd.ts), each from bench/build/torch-bwd/<variant>/
(prepare.sh's BWD_VARIANTS; a variant's parts joined by '+'; SET@128 or SET@64/128 times it at those head dims only),
checked against Flex's gradients and timed in the same run as the default; a row's `variants` gives each one's time
and its speed over the default's. Each row also times our forward alone (`ours_fwd_ms`, no autograd), so that
`ours_bwd_over_fwd` says what the backward costs beside it.
Writes <out>/h200-YYYY-MM-DD-train.json (or the GPU's name) and prints a table. Exits 1 if anything failed.
"""
import argparse
import datetime
import json
import os
import sys
import time
import traceback

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import REF, count_kept, load_module, param_defaults, make_tables, setup_flex, time_cuda, log  # noqa: E402

AGREE = {'bf16': 5e-2, 'f16': 1e-2}


def rel_diff(a, b):
    """max |a - b| over max |b|, in float32."""
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def parse_variants(text):
    """--variants: [(set, head dims it is timed at, or None for all)], 'default' left out; SET@64/128 names the dims."""
    out = []
    for item in text.split(','):
        name, _, dims = item.partition('@')
        if name and name != 'default':
            out.append((name, [int(d) for d in dims.split('/')] if dims else None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--specs', default='scale_invariant,causal,alibi,softcap,sliding_window,document')
    ap.add_argument('--dims', default='64,128')
    ap.add_argument('--lens', default='4096,16384')
    ap.add_argument('--dtype', default='bf16', choices=['bf16', 'f16'])
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--budget-s', type=float, default=240)
    ap.add_argument('--variants', default='', help="backward variants to time beside the default, comma list (parts joined by '+'); "
                    "SET@D times one only at head dim D (SET@64/128: several), so that scarce device time goes to the shapes a variant applies to")
    a = ap.parse_args()
    dev = torch.device('cuda', 0)
    dt = {'bf16': torch.bfloat16, 'f16': torch.float16}[a.dtype]
    compiled, _ = setup_flex()
    from torch.nn.attention.flex_attention import create_block_mask
    t_start = time.perf_counter()
    rows, failures = [], []
    gpu = torch.cuda.get_device_name(0)
    log(f'{gpu}, torch {torch.__version__}: training step (forward + backward), {a.dtype}')
    variants = parse_variants(a.variants)
    for D in [int(x) for x in a.dims.split(',')]:
        for N in [int(x) for x in a.lens.split(',')]:
            B, H = max(1, 32768 // N), 16
            gen = torch.Generator(device=dev).manual_seed(N + D)
            q, k, v, do = (torch.randn((B, H, N, D), generator=gen, device=dev, dtype=dt) for _ in range(4))
            for s in a.specs.split(','):
                if time.perf_counter() - t_start > a.budget_s:
                    failures.append(f'{s} D={D} N={N}: over the {a.budget_s:.0f} s budget, not run')
                    continue
                row = {'spec': s, 'D': D, 'N': N, 'B': B, 'H': H, 'dtype': a.dtype}
                rows.append(row)
                try:
                    tmod = load_module(os.path.join(HERE, 'build', 'torch', f'{s}_{a.dtype}_d{D}.py'))
                    vmods = {v: load_module(os.path.join(HERE, 'build', 'torch-bwd', v, f'{s}_{a.dtype}_d{D}.py')) for v, dims in variants if dims is None or D in dims}
                    fmod = load_module(os.path.join(HERE, 'build', 'flex', f'{s}_flex.py'))
                    manifest = json.load(open(os.path.join(HERE, 'build', 'cuda', f'{s}.{a.dtype}.d{D}.manifest.json')))
                    P, T = param_defaults(manifest), make_tables(manifest, N, H, dev)
                    score_mod, mask_mod = fmod.make_mods(N, N, D, dev, P, T)
                    kept = count_kept(lambda qp, kv: REF[s]['mask'](qp, kv, 0, P, T), N, dev)
                    flops = 3.5 * 4.0 * D * kept * B * H
                    bm = create_block_mask(mask_mod, None, None, N, N, device=dev) if fmod.HAS_MASK else None
                    leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]

                    def step(attention):
                        for x in leaves:
                            x.grad = None
                        o = attention(*leaves)
                        o.backward(do)

                    ours_of = lambda mod: lambda q_, k_, v_: mod.attention(q_, k_, v_, P, T)[0]  # noqa: E731
                    ours = ours_of(tmod)
                    flex = lambda q_, k_, v_: compiled(q_, k_, v_, score_mod=score_mod, block_mask=bm, scale=1.0)  # noqa: E731
                    torch._dynamo.reset()
                    step(flex)
                    g_flex = [x.grad.clone() for x in leaves]

                    def agreement(fn):
                        """fn's dQ, dK, dV against Flex's: max relative differences, non-finite count, and why they disagree (or None)."""
                        step(fn)
                        g = [x.grad for x in leaves]
                        agree = {f'agree_{n}': rel_diff(go, gf) for n, go, gf in zip(('dq', 'dk', 'dv'), g, g_flex)}
                        nonfinite = int(sum((~torch.isfinite(x)).sum() for x in g))
                        why = None
                        if max(agree.values()) > AGREE[a.dtype] or nonfinite:
                            why = (f'gradients disagree with Flex: dQ {agree["agree_dq"]:.2e} dK {agree["agree_dk"]:.2e} dV {agree["agree_dv"]:.2e} '
                                   f'(limit {AGREE[a.dtype]}), {nonfinite} non-finite: not timed')
                        return agree, nonfinite, why

                    agree, row['nonfinite_ours'], why = agreement(ours)
                    row.update(agree)
                    worst = max(agree.values())
                    if why:
                        raise RuntimeError(why)
                    for name, fn in (('ours', ours), ('flex', flex)):
                        ms, mn, _ = time_cuda(lambda: step(fn), a.warmup, a.repeats)
                        row[f'{name}_ms'], row[f'{name}_min_ms'], row[f'{name}_tflops'] = ms, mn, flops / (ms * 1e9)
                    row['ours_over_flex'] = row['flex_ms'] / row['ours_ms']
                    # Where ours' step goes: its forward alone (no autograd graph), the rest is the backward.
                    with torch.no_grad():
                        fwd_ms, _, _ = time_cuda(lambda: tmod.attention(q, k, v, P, T), a.warmup, a.repeats)
                    row['ours_fwd_ms'], row['ours_bwd_over_fwd'] = fwd_ms, (row['ours_ms'] - fwd_ms) / fwd_ms
                    log(f'{s:16s} D={D:3d} N={N:5d}  ours {row["ours_ms"]:8.3f} ms {row["ours_tflops"]:6.1f} TFLOP/s   '
                        f'flex {row["flex_ms"]:8.3f} ms {row["flex_tflops"]:6.1f}   x{row["ours_over_flex"]:.2f}   agree {worst:.1e}   '
                        f'our backward {row["ours_bwd_over_fwd"]:.1f}x our forward')
                    row['variants'] = {}
                    for var, mod in vmods.items():  # not `v`: that is the value tensor
                        fn = ours_of(mod)
                        vagree, nonfinite, why = agreement(fn)
                        vrow = {**vagree, 'nonfinite': nonfinite}
                        row['variants'][var] = vrow
                        if why:
                            vrow['error'] = why
                            failures.append(f'{s} D={D} N={N} variant {var}: {vrow["error"]}')
                            log(f'FAIL {s} D={D} N={N} variant {var}: {vrow["error"]}')
                            continue
                        ms, mn, _ = time_cuda(lambda: step(fn), a.warmup, a.repeats)
                        vrow.update({'ms': ms, 'min_ms': mn, 'tflops': flops / (ms * 1e9), 'over_default': row['ours_ms'] / ms,
                                     'bwd_over_fwd': (ms - fwd_ms) / fwd_ms})
                        log(f'{"":16s} variant {var:24s} {ms:8.3f} ms {vrow["tflops"]:6.1f} TFLOP/s   x{vrow["over_default"]:.2f} of the default   '
                            f'backward {vrow["bwd_over_fwd"]:.1f}x the forward')
                    del g_flex
                except Exception as e:  # noqa: BLE001
                    traceback.print_exc()
                    row['error'] = f'{type(e).__name__}: {e}'[:2000]
                    failures.append(f'{s} D={D} N={N}: {row["error"][:300]}')
                    log(f'FAIL {s} D={D} N={N}: {row["error"][:300]}')
    os.makedirs(a.out, exist_ok=True)
    name = 'h200' if 'H200' in gpu else 'h100' if 'H100' in gpu else 'gpu'
    path = os.path.join(a.out, f'{name}-{datetime.date.today().isoformat()}-train.json')
    meta = {'gpu': gpu, 'torch': torch.__version__, 'command': ' '.join(sys.argv), 'tokens': 32768, 'heads': 16,
            'flops': '3.5 x 4 D (kept pairs) B H: forward plus a backward of 2.5 forwards', 'agree_limit': AGREE[a.dtype],
            'timing': 'CUDA events around o = attention(q, k, v); o.backward(dO); median of repeats after warm-up'}
    with open(path, 'w') as f:
        json.dump({'meta': meta, 'rows': rows, 'failures': failures}, f, indent=1)
    log(f'results: {path}  ({time.perf_counter() - t_start:.1f} s)')
    for x in failures:
        log(f'failure: {x}')
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
