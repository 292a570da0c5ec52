// The flex target: a spec as a Python module for PyTorch FlexAttention
// (`score_mod` + `mask_mod`), rendered from the same IR as the kernels.
// Users get the spec in PyTorch with autograd; the benchmark gets a peer
// built from the very same spec.
//
// flex_attention is called with scale=1.0 so that score_mod receives the raw
// dot product, which is the IR's `dot` leaf (the spec's scale is inside the
// logit). FlexAttention's q_idx is the query row; the DSL's q_idx is the
// absolute position row + (kv_len - q_len), so score_mod shifts it.
import type { LoweredKernel } from '../ir/program.ts';
import { topoOrder, type Node } from '../ir/nodes.ts';
import { emitValues, helpersUsed, type LeafNames } from './cstyle.ts';
import { PYTHON } from './lang-python.ts';
import { mangle } from './names.ts';

const LEAF: Record<string, string> = {
  q_idx: 'q_pos', kv_idx: 'kv_idx', head: 'h', batch: 'b', q_len: 'q_len', kv_len: 'kv_len', head_dim: 'head_dim',
};

const names: LeafNames = {
  leaf(n: Node): string {
    if (n.op === 'dot') return 'score';
    if (n.op === 'param') return mangle('param', n.name!);
    if (n.op === 'builtin' && LEAF[n.name!]) return LEAF[n.name!];
    throw new Error(`internal error: leaf ${n.op} ${n.name ?? ''} cannot appear in a flex module`);
  },
  load: (n, index) => `${mangle('table', n.name!)}[torch.clamp(${index}, 0, ${mangle('table', n.name!)}.shape[0] - 1)]`,
  loadRange: (n) => { throw new Error(`internal error: ${n.op} (tile tests only) in a flex module`); },
};

function pyNumber(v: number, type: 'i32' | 'f32'): string {
  return type === 'f32' && Number.isInteger(v) ? `${v}.0` : String(v);
}

function reads(roots: Node[], pred: (n: Node) => boolean): boolean {
  return topoOrder(roots).some(pred);
}

function body(root: Node, indent: string): string[] {
  const { lines, values } = emitValues([root], PYTHON, names, { prefix: 'v', indent });
  return [...lines, `${indent}return ${values[0]}`];
}

export function renderFlex(k: LoweredKernel, opts: { hash: string; version: string }): string {
  const { program } = k;
  const mask = program.mask;
  const hasMask = !(mask.op === 'const' && mask.value === true);
  const maskReadsScore = reads([mask], (n) => n.op === 'dot');
  // A mask that reads the score cannot be a mask_mod: it becomes -inf in score_mod.
  const logit = maskReadsScore
    ? program.factory.make('select', 'f32', [mask, program.logit, program.factory.num(-Infinity, 'f32')])
    : program.logit;
  const maskPerHead = reads([mask], (n) => n.op === 'builtin' && (n.name === 'head' || n.name === 'batch'));

  const py = (xs: unknown) => JSON.stringify(xs);
  const paramLines = program.params.map((p) =>
    `    ${mangle('param', p.name)} = torch.tensor(params[${py(p.name)}], dtype=${p.type === 'i32' ? 'torch.int32' : 'torch.float32'}, device=device)`);
  const tableLines = program.inputs.map((t) =>
    `    ${mangle('table', t.name)} = torch.as_tensor(tables[${py(t.name)}]).to(device=device, dtype=${t.elem === 'i32' ? 'torch.int32' : 'torch.float32'})`);
  const scoreBody = body(logit, '        ');
  const maskBody = hasMask && !maskReadsScore ? body(mask, '        ') : ['        return torch.ones_like(kv_idx, dtype=torch.bool)'];
  const code = [...scoreBody, ...maskBody].join('\n');
  const helpers = helpersUsed(PYTHON, code);

  return `# attnc ${opts.version}: FlexAttention form of attention '${program.name}' (spec hash ${opts.hash}).
# Generated from the same IR as the WGSL and CUDA kernels; do not edit.
#   out, lse = attention(q, k, v, params={...}, tables={...})
# q: [B, Hq, Nq, D], k/v: [B, Hkv, Nk, D]; lse is the natural-log logsumexp.
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

SPEC = ${py(program.name)}
PARAMS = {${program.params.map((p) => `${py(p.name)}: ${pyNumber(p.default, p.type)}`).join(', ')}}
INPUTS = {${program.inputs.map((t) => `${py(t.name)}: (${py(t.elem)}, ${py(t.axis)})`).join(', ')}}
HAS_MASK = ${hasMask && !maskReadsScore ? 'True' : 'False'}
MASK_PER_HEAD = ${maskPerHead ? 'True' : 'False'}
${helpers.length ? '\n' + helpers.join('\n\n\n') + '\n' : ''}

def make_mods(q_len, kv_len, head_dim, device, params=None, tables=None):
    """score_mod and mask_mod for calls of this shape. Params and tables are
    captured as tensors, so new values reuse the compiled kernel."""
    params = {**PARAMS, **(params or {})}
    tables = tables or {}
    missing = [name for name in INPUTS if name not in tables]
    if missing:
        raise ValueError(f"{SPEC}: missing table inputs {missing}")
${[...paramLines, ...tableLines].join('\n')}${paramLines.length + tableLines.length ? '\n' : ''}    offset = kv_len - q_len

    def score_mod(score, b, h, q_idx, kv_idx):
        q_pos = q_idx + offset
${scoreBody.join('\n')}

    def mask_mod(b, h, q_idx, kv_idx):
        q_pos = q_idx + offset
${maskBody.join('\n')}

    return score_mod, mask_mod


def attention(q, k, v, params=None, tables=None, block_mask=None, kernel=flex_attention):
    """Runs the spec through FlexAttention; returns (out, lse)."""
    B, Hq, Nq, D = q.shape
    Nk = k.shape[2]
    score_mod, mask_mod = make_mods(Nq, Nk, D, q.device, params, tables)
    if block_mask is None and HAS_MASK:
        block_mask = create_block_mask(mask_mod, B if MASK_PER_HEAD else None, Hq if MASK_PER_HEAD else None, Nq, Nk, device=q.device)
    return kernel(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=1.0,
                  enable_gqa=k.shape[1] != Hq, return_lse=True)
`;
}
