// Writes grammar/diagrams.html: chevrotain's railroad diagrams of the parser.
// Run with `npx tsx grammar/diagrams.ts` (npm run diagrams) after changing
// the grammar, and commit the result.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSyntaxDiagramsCode } from './chevrotain.ts';
import { attnParser } from './parser.ts';

const out = join(dirname(fileURLToPath(import.meta.url)), 'diagrams.html');
writeFileSync(out, createSyntaxDiagramsCode(attnParser().getSerializedGastProductions()));
console.log(`wrote ${out}`);
