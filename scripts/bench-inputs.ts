// Benchmark inputs kept between processes: cuda-bench runs each variant in a process of its own, and drawing
// 3 x 67 M normals in JS (randomInputs, B2 H16 N16384 D128) takes about 7 s a shape, most of a sweep's device time.
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInputs, type Shape } from '../src/runtime/random.ts';

/** randomInputs(shape, seed), the same values, from a file in `dir` (the temp directory) after the first call. */
export function cachedInputs(shape: Shape, seed: number, dir = tmpdir()): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const nq = shape.B * shape.Hq * shape.Nq * shape.D, nkv = shape.B * shape.Hkv * shape.Nk * shape.D;
  const file = join(dir, `attnc-cuda-bench-${shape.B}x${shape.Hq}x${shape.Hkv}x${shape.Nq}x${shape.Nk}x${shape.D}-seed${seed}.f32`);
  const bytes = 4 * (nq + 2 * nkv);
  if (existsSync(file) && statSync(file).size === bytes) {
    const all = new Float32Array(bytes / 4);  // a copy: readFileSync's buffer need not be 4-byte aligned
    new Uint8Array(all.buffer).set(readFileSync(file));
    return { q: all.subarray(0, nq), k: all.subarray(nq, nq + nkv), v: all.subarray(nq + nkv) };
  }
  const x = randomInputs(shape, seed);
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, Buffer.concat([x.q, x.k, x.v].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
  renameSync(tmp, file);  // whole or not at all: a process killed mid-write leaves no short file under the name
  return x;
}
