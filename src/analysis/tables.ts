// Table inputs for `analyze`. A spec's `input` tables come from
// `--input NAME=FILE.npy`; the one default is for `f32[heads]` tables (ALiBi
// slopes and the like): the slopes of an 8-head ALiBi model, 2^(-8(h+1)/8),
// of which head 0 (the steepest, 1/2) is the one analysed.
import { readFileSync } from 'node:fs';
import { UsageError } from '../compiler/compile.ts';
import type { InputInfo } from '../compiler/ir/program.ts';
import { readNpy, toFloat32, toInt32 } from '../runtime/npy.ts';
import { defaultTables } from '../runtime/random.ts';
import { DEFAULT_HEADS } from './model.ts';

function readTable(path: string, input: InputInfo): Float32Array | Int32Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read input '${input.name}' '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const arr = readNpy(bytes, path);
  if (arr.shape.length !== 1) throw new UsageError(`input '${input.name}' ('${path}') must be 1-D, has shape [${arr.shape.join(', ')}]`);
  return input.elem === 'i32' ? toInt32(arr, path) : toFloat32(arr, path);
}

/** Tables for one spec: from the given files, else the documented default, else an error. */
export function analysisTables(
  inputs: readonly InputInfo[], files: Readonly<Record<string, string>>, maxDistance: number,
): Record<string, Float32Array | Int32Array> {
  const out: Record<string, Float32Array | Int32Array> = {};
  const positions = maxDistance + 1;
  for (const input of inputs) {
    const path = files[input.name];
    if (path === undefined) {
      if (input.elem === 'f32' && input.axis === 'heads') {
        out[input.name] = defaultTables([input], { B: 1, Hq: DEFAULT_HEADS, Nq: 1, Nk: 1 }, 0)[input.name];
        continue;
      }
      throw new UsageError(`input '${input.name}' (${input.elem}[${input.axis}]) is missing: pass --input ${input.name}=FILE.npy`);
    }
    const table = readTable(path, input);
    // Positions run 0..maxDistance, so a per-position table needs one value each.
    if ((input.axis === 'q_len' || input.axis === 'kv_len') && table.length !== positions) {
      throw new UsageError(`input '${input.name}' is ${input.elem}[${input.axis}]: with --max-distance ${maxDistance} it needs ${positions} values, got ${table.length}`);
    }
    if (table.length === 0) throw new UsageError(`input '${input.name}' ('${path}') is empty`);
    out[input.name] = table;
  }
  return out;
}
