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
    if (n.op === 'param') return mangle('p', n.name!);
    if (n.op === 'builtin' && LEAF[n.name!]) return LEAF[n.name!];
    throw new Error(`internal error: leaf ${n.op} ${n.name ?? ''} cannot appear in a flex module`);
  },
  load: (n, index) => `${mangle('t', n.name!)}[_index(${index}, ${mangle('t', n.name!)}.shape[0])]`,
  loadRange: (n) => { throw new Error(`internal error: ${n.op} (tile tests only) in a flex module`); },
};

function pyNumber(v: number, type: 'i32' | 'f32'): string {
  return type === 'f32' && Number.isInteger(v) ? `${v}.0` : String(v);
}

function reads(roots: Node[], pred: (n: Node) => boolean): boolean {
  return topoOrder(roots).some(pred);
}

function body(root: Node, indent: string, known: ReadonlyMap<Node, string>): string[] {
  const { lines, values } = emitValues([root], PYTHON, names, { prefix: 'v', indent, known });
  return [...lines, `${indent}return ${values[0]}`];
}

/**
 * Values that are the same for every element of a call (constants, sizes,
 * params; nothing per head, batch or position): computed once in make_mods
 * and captured, instead of once per element inside score_mod.
 */
function hoistPerCall(roots: Node[]): { lines: string[]; known: Map<Node, string> } {
  const perCall = new Map<Node, boolean>();
  for (const n of topoOrder(roots)) {
    const leafOk = n.op === 'const' || n.op === 'param' || (n.op === 'builtin' && ['q_len', 'kv_len', 'head_dim'].includes(n.name!));
    const interior = n.op !== 'const' && n.op !== 'param' && n.op !== 'builtin' && n.op !== 'dot' && n.op !== 'load'
      && n.op !== 'load_min' && n.op !== 'load_max';
    perCall.set(n, leafOk || (interior && n.args.every((a) => perCall.get(a))));
  }
  const isInterior = (n: Node) => perCall.get(n) && n.args.length > 0;
  // The frontier: per-call interior values used by per-element ones (or roots).
  const frontier = new Set<Node>();
  for (const n of topoOrder(roots)) {
    if (!perCall.get(n)) n.args.filter(isInterior).forEach((a) => frontier.add(a));
  }
  roots.filter(isInterior).forEach((r) => frontier.add(r));
  const list = [...frontier];
  if (list.length === 0) return { lines: [], known: new Map() };
  const { lines, values } = emitValues(list, PYTHON, names, { prefix: 'k', indent: '    ' });
  const known = new Map<Node, string>();
  const out = [...lines];
  list.forEach((n, i) => {
    const name = `k${n.id}`;
    if (values[i] !== name) out.push(`    ${name} = ${values[i]}`);
    known.set(n, name);
  });
  return { lines: out, known };
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
    `    ${mangle('p', p.name)} = torch.tensor(params[${py(p.name)}], dtype=${p.type === 'i32' ? 'torch.int32' : 'torch.float32'}, device=device)`);
  const tableLines = program.inputs.map((t) =>
    `    ${mangle('t', t.name)} = torch.as_tensor(tables[${py(t.name)}]).to(device=device, dtype=${t.elem === 'i32' ? 'torch.int32' : 'torch.float32'})`);
  const hoisted = hoistPerCall(hasMask && !maskReadsScore ? [logit, mask] : [logit]);
  const scoreBody = body(logit, '        ', hoisted.known);
  const maskBody = hasMask && !maskReadsScore ? body(mask, '        ', hoisted.known) : ['        return kv_idx >= 0'];
  const code = [...hoisted.lines, ...scoreBody, ...maskBody].join('\n');
  const helpers = helpersUsed(PYTHON, code);

  return `# attnc ${opts.version}: FlexAttention form of attention '${program.name}' (spec hash ${opts.hash}).
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
    offset = kv_len - q_len
    # Sizes and params as captured 0-dim tensors: nothing inside score_mod
    # creates a tensor, and new param values reuse the compiled kernel.
    q_len = torch.tensor(q_len, dtype=torch.int32, device=device)
    kv_len = torch.tensor(kv_len, dtype=torch.int32, device=device)
    head_dim = torch.tensor(head_dim, dtype=torch.int32, device=device)
${[...paramLines, ...tableLines, ...hoisted.lines].join('\n')}${paramLines.length + tableLines.length + hoisted.lines.length ? '\n' : ''}
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
    out, aux = kernel(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=1.0,
                      enable_gqa=k.shape[1] != Hq, **LSE_REQUEST)
    return out, (aux.lse if AuxRequest is not None else aux)
`;
}
