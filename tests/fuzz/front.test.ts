// Front-end fuzzing in CI: a fixed seed and a fixed number of specs (plus the
// pathological inputs), so the run is the same on a fast or a loaded machine
// (~10 s here). Longer runs: `npm run fuzz -- --seconds N`.
import { describe, expect, it } from 'vitest';
import { frontLoop } from '../../src/fuzz/front-loop.ts';
import { checkFront } from '../../src/fuzz/front.ts';
import { genFrontSpec } from '../../src/fuzz/front-gen.ts';
import { mutate } from '../../src/fuzz/mutate.ts';

describe('front-end fuzzing', () => {
  it('never crashes, keeps spans inside the file, stays within the time budget (seed 1, 300 specs)', () => {
    const s = frontLoop({ seed: 1, seconds: 600, maxSpecs: 300, log: (l) => console.log(l) });
    console.log(`front fuzz: ${s.specs} specs (${s.kernels} kernels, ${s.diagnostics} diagnosed), ${s.crashes} crashes, worst ${s.worstMsPerKb.toFixed(2)} ms/KB`);
    expect(s.failures).toEqual([]);
    expect(s.specs).toBe(300);
    // Both outcomes are exercised: generated valid specs do reach rendering.
    expect(s.kernels).toBeGreaterThan(20);
    expect(s.diagnostics).toBeGreaterThan(20);
  }, 600_000);

  it('the generator is deterministic and its valid mode mostly compiles', () => {
    expect(genFrontSpec(42)).toBe(genFrontSpec(42));
    const ok = Array.from({ length: 50 }, (_, i) => checkFront(genFrontSpec(i, { mistakes: 0 }), { render: false }).kind === 'kernel').filter(Boolean).length;
    expect(ok).toBeGreaterThan(25);
  });

  it('mutations change the text and are reproducible', () => {
    const a = mutate('attention a {\n  score = score * 2.0\n}\n', 5, ['attention b {}']);
    expect(a).toEqual(mutate('attention a {\n  score = score * 2.0\n}\n', 5, ['attention b {}']));
    expect(a.kinds.length).toBeGreaterThan(0);
  });
});
