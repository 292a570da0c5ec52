// examples/web: the page's logic (demo.js) with the module --target ts writes
// beside it, run in Node with Dawn standing in for navigator.gpu.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/runtime/webgpu-node.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const adapter = await nodeGpu().requestAdapter().catch(() => null);

(adapter ? describe : describe.skip)('examples/web', () => {
  it('runs the scale-invariant module within the f32 tolerance of a float64 evaluation of the formula', async () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'compile', 'examples/scale_invariant.attn', '--target', 'ts', '-o', 'examples/web'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { runDemo } = await import(join(ROOT, 'examples/web/demo.js'));
    const lines: string[] = [];
    const worst = await runDemo(nodeGpu(), (l: string) => lines.push(l), { heads: 2, N: 96, repeats: 1 });
    expect(worst).toBeLessThan(1e-4);
    expect(lines[0]).toMatch(/^scale_invariant, 2 heads x 96 tokens, D = 64: median [\d.]+ ms per call/);
  }, 120_000);
});
