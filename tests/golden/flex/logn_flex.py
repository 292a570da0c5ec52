# attnc golden: FlexAttention form of attention 'logn' (spec hash golden).
# Generated from the same IR as the WGSL and CUDA kernels; do not edit.
#   out, lse = attention(q, k, v, params={...}, tables={...})
# q: [B, Hq, Nq, D], k/v: [B, Hkv, Nk, D]; lse is the natural-log logsumexp.
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
try:
    from torch.nn.attention.flex_attention import AuxRequest  # torch >= 2.9: return_lse is deprecated there
except ImportError:
    AuxRequest = None
LSE_REQUEST = {'return_aux': AuxRequest(lse=True)} if AuxRequest is not None else {'return_lse': True}

SPEC = "logn"
PARAMS = {"train_len": 4096.0}
INPUTS = {}
HAS_MASK = True
MASK_PER_HEAD = False

def _max(a, b):
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.maximum(a, b)
    return torch.clamp(a, min=b) if isinstance(a, torch.Tensor) else torch.clamp(b, min=a)


def _f32(a):
    return a.to(torch.float32) if isinstance(a, torch.Tensor) else float(a)


def make_mods(q_len, kv_len, head_dim, device, params=None, tables=None):
    """score_mod and mask_mod for calls of this shape. Params and tables are
    captured as tensors, so new values reuse the compiled kernel."""
    params = {**PARAMS, **(params or {})}
    tables = tables or {}
    missing = [name for name in INPUTS if name not in tables]
    if missing:
        raise ValueError(f"{SPEC}: missing table inputs {missing}")
    offset = kv_len - q_len
    # Sizes and params as captured 0-dim tensors: nothing inside score_mod
    # creates a tensor, and new param values reuse the compiled kernel.
    q_len = torch.tensor(q_len, dtype=torch.int32, device=device)
    kv_len = torch.tensor(kv_len, dtype=torch.int32, device=device)
    head_dim = torch.tensor(head_dim, dtype=torch.int32, device=device)
    p_train_len = torch.tensor(params["train_len"], dtype=torch.float32, device=device)
    k4 = (1.0 / torch.sqrt(_f32(_f32(head_dim))))
    k14 = torch.log(_f32(p_train_len))

    def score_mod(score, b, h, q_idx, kv_idx):
        q_pos = q_idx + offset
        return ((score * k4) * _max(1.0, (torch.log(_f32(_f32((q_pos + 1)))) / k14)))

    def mask_mod(b, h, q_idx, kv_idx):
        q_pos = q_idx + offset
        return (kv_idx <= q_pos)

    return score_mod, mask_mod


def attention(q, k, v, params=None, tables=None, block_mask=None, kernel=flex_attention):
    """Runs the spec through FlexAttention; returns (out, lse)."""
    B, Hq, Nq, D = q.shape
    Nk = k.shape[2]
    score_mod, mask_mod = make_mods(Nq, Nk, D, q.device, params, tables)
    if block_mask is None and HAS_MASK:
        block_mask = create_block_mask(mask_mod, B if MASK_PER_HEAD else None, Hq if MASK_PER_HEAD else None, Nq, Nk, device=q.device)
    out, aux = kernel(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=1.0,
                      enable_gqa=k.shape[1] != Hq, **LSE_REQUEST)
    return out, (aux.lse if AuxRequest is not None else aux)
