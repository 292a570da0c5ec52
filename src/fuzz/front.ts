// The front-end property: for any text, `frontEnd` returns a block or
// diagnostics whose spans lie inside the file; when it returns a block,
// lowering and rendering WGSL, CUDA, flex and the torch module succeed too. Nothing throws
// (a thrown error, a stack overflow or an E900 internal-error diagnostic is
// a crash), and the time per KB stays bounded.
import { frontEnd, lowerAndAnalyze, renderKernel } from '../compiler/compile.ts';
import { renderFlex } from '../compiler/render/flex.ts';
import { torchModule } from '../compiler/render/torch.ts';
import type { DeviceLimits } from '../runtime/device.ts';

/** Lavapipe-like limits, fixed so that the fuzz result does not depend on the machine. */
export const FUZZ_LIMITS: DeviceLimits = {
  maxWorkgroupStorageBytes: 32768, maxInvocationsPerWorkgroup: 256, maxWorkgroupSizeX: 256,
  maxStorageBufferBindingSize: 134217728, maxBufferSize: 268435456, maxComputeWorkgroupsPerDimension: 65535,
};

export interface FrontOutcome {
  kind: 'kernel' | 'diagnostics' | 'crash';
  /** What went wrong, for crashes. */
  problem?: string;
  ms: number;
  bytes: number;
}

/** Time allowed: a fixed start-up cost plus a per-KB rate (generous: the machine is shared). */
export const TIME_BUDGET = { baseMs: 500, perKbMs: 20 };

export function checkFront(text: string, opts: { render?: boolean } = {}): FrontOutcome {
  const bytes = Buffer.byteLength(text, 'utf8');
  const t0 = performance.now();
  const done = (kind: FrontOutcome['kind'], problem?: string): FrontOutcome => ({ kind, problem, ms: performance.now() - t0, bytes });
  try {
    const fe = frontEnd('fuzz.attn', text);
    if (!fe.ok) {
      if (fe.diagnostics.length === 0) return done('crash', 'failed without a diagnostic');
      for (const d of fe.diagnostics) {
        if (d.code === 'E900') return done('crash', `internal error diagnostic: ${d.message}`);
        const { start, end } = d.span;
        if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= text.length)) {
          return done('crash', `${d.code} span [${start}, ${end}) is outside the file (length ${text.length})`);
        }
        if (typeof d.message !== 'string' || d.message.length === 0) return done('crash', `${d.code} has no message`);
      }
      return done('diagnostics');
    }
    if (opts.render !== false) {
      const lowered = lowerAndAnalyze(fe.block);
      renderKernel(text, fe.block, lowered, { target: 'wgsl', dtype: 'f16', headDim: 64, limits: FUZZ_LIMITS });
      const cuda = renderKernel(text, fe.block, lowered, { target: 'cuda', dtype: 'bf16', headDim: 64 });
      torchModule([cuda], 'fuzz', 'fuzz');  // the torch module around it (its other arch's source is rendered the same way)
      renderKernel(text, fe.block, lowered, { target: 'cuda', dtype: 'f32', headDim: 64 });
      renderFlex(lowered, { hash: 'fuzz', version: 'fuzz' });
    }
    return done('kernel');
  } catch (e) {
    const err = e as Error;
    return done('crash', `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`.slice(0, 500));
  }
}

export function overBudget(o: FrontOutcome): boolean {
  return o.ms > TIME_BUDGET.baseMs + TIME_BUDGET.perKbMs * (o.bytes / 1024);
}
