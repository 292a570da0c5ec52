// The flex target for every example: golden Python modules (rewritten with
// UPDATE_GOLDEN=1), valid Python, and none of the things FlexAttention's
// compiler cannot lower inside score_mod (tensor constructors).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd, lowerAndAnalyze } from '../../src/compiler/compile.ts';
import { renderFlex } from '../../src/compiler/render/flex.ts';
import { expectGolden } from '../golden-file.ts';

const dir = 'tests/golden/flex';
const examples = readdirSync('examples').filter((f) => f.endsWith('.attn')).sort();
const python = (() => {
  try {
    execFileSync('python3', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

function render(file: string): string {
  const fe = frontEnd(file, readFileSync(join('examples', file), 'utf8'));
  if (!fe.ok) throw new Error(`${file} does not compile`);
  return renderFlex(lowerAndAnalyze(fe.block), { hash: 'golden', version: 'golden' });
}

describe('flex target', () => {
  for (const file of examples) {
    const name = file.replace(/\.attn$/, '');
    it(`golden ${name}_flex.py`, () => {
      const py = render(file);
      const path = join(dir, `${name}_flex.py`);
      expectGolden(path, py);
    });

    it(`${name}: score_mod and mask_mod create no tensors`, () => {
      const py = render(file);
      const mods = py.slice(py.indexOf('    def score_mod'), py.indexOf('    return score_mod, mask_mod'));
      expect(mods).toMatch(/def score_mod\(score, b, h, q_idx, kv_idx\)/);
      expect(mods).not.toMatch(/torch\.(tensor|as_tensor|full|ones|zeros)\b/);
    });

    it.skipIf(!python)(`${name}: is valid Python`, () => {
      const path = join(dir, `${name}_flex.py`);
      execFileSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', path]);
    });
  }
});
