// The loader half of the `torch` target's module: src/compiler/render/torch_runtime.py, appended as it is after the
// spec's half (render/torch.ts), less the file's own header comment (up to its first blank line). Kept as a Python
// file so that Python tools read it as Python; nothing of the spec is interpolated into it.
import { readFileSync } from 'node:fs';

const file = readFileSync(new URL('./torch_runtime.py', import.meta.url), 'utf8');
export const TORCH_RUNTIME = '\n' + file.slice(file.indexOf('\n\n') + 2);
