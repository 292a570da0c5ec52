// The flex target's modules (render/flex.ts) run by FlexAttention itself, eagerly on the CPU in float64, where the
// Python (ATTNC_PYTHON, else python3) has torch: every example against the float64 reference (src/runtime/reference.ts,
// which evaluates the spec's syntax tree, not the IR the module comes from) within the f32 tolerance (the spec's
// math is f32), on ragged, GQA and decode shapes. No GPU needed. (FlexAttention has no backward on the CPU, so the
// modules' gradients are not checked here.)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderFlex } from '../../src/compiler/render/flex.ts';
import { compareOutputs, TOLERANCE } from '../../src/runtime/compare.ts';
import { readNpy, toFloat32, writeNpy } from '../../src/runtime/npy.ts';
import { defaultTables, randomInputs } from '../../src/runtime/random.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { loadExamples } from '../cuda/suite.ts';

const PY = process.env.ATTNC_PYTHON ?? 'python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch, numpy; from torch.nn.attention.flex_attention import flex_attention']).status === 0;
if (!hasTorch) console.warn(`tests/torch/flex-cpu.test.ts: skipped: ${PY} has no torch with FlexAttention (ATTNC_PYTHON picks another Python)`);
const work = mkdtempSync(join(tmpdir(), 'attnc-flex-cpu-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const specs = loadExamples();

const RUNNER = `
import importlib.util, json, os, sys, warnings
import numpy as np, torch
warnings.filterwarnings('ignore')  # flex_attention warns that eager mode does not fuse
def load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)
    return m
for case in json.load(open(sys.argv[1])):
    m, d = load(case['module']), case['dir']
    q, k, v = (torch.from_numpy(np.load(os.path.join(d, x + '.npy'))).double() for x in 'qkv')
    tables = {n: torch.from_numpy(np.load(os.path.join(d, f't{i}.npy'))) for i, n in enumerate(case['tables'])}
    o, lse = m.attention(q, k, v, params=case['params'], tables=tables)
    np.save(os.path.join(d, 'o.npy'), o.float().numpy()); np.save(os.path.join(d, 'lse.npy'), lse.float().numpy())
print('ran', len(json.load(open(sys.argv[1]))))
`;

describe.skipIf(!hasTorch)('flex target on the CPU (FlexAttention eager, float64)', () => {
  it('every example against the float64 reference', () => {
    const shapes = [
      { B: 1, Hq: 2, Hkv: 2, Nq: 37, Nk: 37, D: 32 },
      { B: 1, Hq: 4, Hkv: 2, Nq: 20, Nk: 45, D: 32 },
      { B: 2, Hq: 2, Hkv: 1, Nq: 1, Nk: 64, D: 32 },
    ];
    const cases: Array<Record<string, unknown>> = [];
    const checks: Array<{ spec: (typeof specs)[number]; shape: (typeof shapes)[number]; seed: number; dir: string; params: Record<string, number> }> = [];
    for (const s of specs) {
      const module = join(work, `${s.name}_flex.py`);
      writeFileSync(module, renderFlex(s.lowered, { hash: 'test', version: 'test' }));
      shapes.forEach((shape, i) => {
        const seed = 11 + i, dir = join(work, `${s.name}-${i}`);
        mkdirSync(dir);
        const { q, k, v } = randomInputs(shape, seed);
        writeFileSync(join(dir, 'q.npy'), writeNpy(q, [shape.B, shape.Hq, shape.Nq, shape.D]));
        writeFileSync(join(dir, 'k.npy'), writeNpy(k, [shape.B, shape.Hkv, shape.Nk, shape.D]));
        writeFileSync(join(dir, 'v.npy'), writeNpy(v, [shape.B, shape.Hkv, shape.Nk, shape.D]));
        const tables = defaultTables(s.lowered.program.inputs, shape, seed);
        const names = s.lowered.program.inputs.map((t) => t.name);
        names.forEach((n, ti) => writeFileSync(join(dir, `t${ti}.npy`), writeNpy(tables[n] as Float32Array | Int32Array, [tables[n].length])));
        // short windows and prefixes, so that the masks cut inside these lengths
        const params = Object.fromEntries(s.lowered.program.params.map((p) => [p.name, p.name === 'window' ? 10 : p.name === 'prefix' ? 5 : p.default]));
        cases.push({ module, dir, params, tables: names });
        checks.push({ spec: s, shape, seed, dir, params });
      });
    }
    const list = join(work, 'cases.json');
    writeFileSync(list, JSON.stringify(cases));
    const r = spawnSync(PY, ['-c', RUNNER, list], { encoding: 'utf8', maxBuffer: 1 << 24 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout.trim()).toBe(`ran ${cases.length}`);
    const failures: string[] = [];
    for (const c of checks) {
      const { q, k, v } = randomInputs(c.shape, c.seed);
      const call = { ...c.shape, q, k, v, params: c.params, tables: defaultTables(c.spec.lowered.program.inputs, c.shape, c.seed) };
      const want = referenceAttention(c.spec.block, call);
      const got = { o: toFloat32(readNpy(readFileSync(join(c.dir, 'o.npy')), 'o')), lse: toFloat32(readNpy(readFileSync(join(c.dir, 'lse.npy')), 'lse')) };
      const cmp = compareOutputs(got, want, c.shape);
      if (!(cmp.nanCount === 0 && cmp.maxAbsErrO <= TOLERANCE.f32 && cmp.maxAbsErrLse <= TOLERANCE.f32)) {
        failures.push(`${c.spec.name} ${JSON.stringify(c.shape)}: errO ${cmp.maxAbsErrO} errLse ${cmp.maxAbsErrLse} nan ${cmp.nanCount}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checks.length).toBe(specs.length * shapes.length);
  }, 300_000);
});
