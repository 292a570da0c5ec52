// print(parse) round trip: printing any AST and parsing it back gives the same
// AST (spans aside), and printing is a fixed point on the examples.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { printSpec } from '../../src/compiler/syntax/print.ts';
import { fileArb, withoutSpans } from './arbitrary.ts';

describe('printSpec / parseSpec round trip', () => {
  it('reparses every random AST to itself', () => {
    fc.assert(
      fc.property(fileArb, (file) => {
        const text = printSpec(file);
        const back = parseSpec('printed.attn', text);
        expect(back.diagnostics.map((d) => d.message)).toEqual([]);
        expect(withoutSpans(back.file.blocks)).toEqual(withoutSpans(file.blocks));
      }),
      { seed: 20250101, numRuns: 400 },
    );
  });

  it('is a fixed point on the examples', () => {
    const dir = 'examples';
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.attn'))) {
      const once = printSpec(parseSpec(f, readFileSync(`${dir}/${f}`, 'utf8')).file);
      const twice = printSpec(parseSpec(f, once).file);
      expect(twice).toBe(once);
    }
  });
});
