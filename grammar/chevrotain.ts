// chevrotain's own entry point loads ~600 lodash-es modules one by one,
// which costs seconds per CLI start under an ESM loader. The package ships a
// single-file bundle of the same code: load that instead, typed by the
// package's own declarations.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Chevrotain from 'chevrotain';

const entry = createRequire(import.meta.url).resolve('chevrotain');
// entry is <pkg>/lib/src/api.js; the bundle is <pkg>/lib/chevrotain.mjs.
const bundle = join(dirname(dirname(entry)), 'chevrotain.mjs');
const chevrotain = (await import(pathToFileURL(bundle).href)) as typeof Chevrotain;

export const { createToken, createTokenInstance, Lexer, CstParser, EOF, createSyntaxDiagramsCode } = chevrotain;
