// The warp-specialized Hopper kernel (sm_90a, f16/bf16 storage, f32 math):
// the wgmma loop of cuda-wgmma.ts, with the staging taken off the warps that
// do the math. A block is `warps / 4` consumer warpgroups of 64 query rows
// each plus one producer warpgroup (the last 128 threads):
//   producer   walks the live KV tiles (tile tests, table-driven ones too),
//              copies each K/V tile into a free stage with cp.async (swizzled
//              atoms, as cuda-wgmma.ts), fills the stage's per-column and
//              per-diagonal tables, and posts the tile number (and whether
//              its mask must be evaluated per element) in the stage's slot;
//   consumers  wait for a stage, run S = Q K^T, the element loop, the online
//              softmax and O += P V on it, and hand it back; with 3 stages
//              (t.overlap) tile k+1's softmax runs while tile k's P V is on
//              the tensor cores (overlappedLoop below).
// Stages are handed over by mbarriers: full[s] (the producer's 128 arrivals,
// each also tracking that thread's cp.async copies) and empty[s] (every
// consumer thread). A slot of -1 ends the loop. setmaxnreg moves registers
// from the producer (which holds no accumulators) to the consumers, so S, O,
// P and the per-row values stay in registers at 384 threads per block.
//
// Persistent (t.persistent, the default at D=64): the block walks work items
// (query block, head, batch) with a grid stride, heaviest first; both roles
// keep running stage counters across items, and Q is double-buffered so that
// the producer loads item n+1's Q, classifies its tiles and fills its first
// stages while the consumers finish item n and stage its O in their buffer.
//
// Why: in the kernel of cuda-wgmma.ts every consumer thread issues its share
// of each tile's copies and, before that, waits until both warpgroups are done
// with the stage it refills; here that wait and those copies happen in a warp
// that does nothing else, so a consumer blocks only when its next tile has not
// landed.
import { kvStaging, type SpecCode } from './cuda-spec.ts';
import { elemLoopCode, epilogueCode, indent, rescaleCode, softmaxCode, type SoftmaxOptions } from './cuda-mma.ts';
import { WGMMA_ONES_BYTES, wgmmaQElems, type CudaTiles } from '../schedule/cuda-tiles.ts';
import { stageDesc, WGMMA_KV_ROW_BYTES, wgmmaConsumerInit, wgmmaKvDst, wgmmaPack, wgmmaPV, wgmmaPVIssue, wgmmaQK, wgmmaQLoad, wgmmaSmem, wgmmaStageDescs } from './cuda-wgmma.ts';

/** Threads of the producer warpgroup. */
export const PRODUCER_THREADS = 128;

export function renderWgmmaWsKernel(entry: string, spec: SpecCode, t: CudaTiles, headDim: number, sig: string): string {
  const { bm, bn, threads, stride, stages } = t;
  const consumers = threads - PRODUCER_THREADS;
  const nt = bn / 8, halves = headDim / 64, nd = headDim / 8;
  const qBuffers = t.persistent ? 2 : 1;
  // The softmax's instruction diet (cuda-mma.ts, SoftmaxOptions): at D=64 the loop is bound by FP32/ALU issue.
  const sm: SoftmaxOptions = { fold: t.foldScale ? spec.foldedScale : null, lazyRescale: t.lazyRescale, twoChains: t.twoChains, rowSumMma: t.rowSumMma, zeroRef: t.zeroRef };
  // With the row sums on the tensor cores they are O's last n8 tile (o[0][nd]), rescaled with O.
  const rowSumTile = t.rowSumMma ? nd : undefined, ndO = t.rowSumMma ? nd + 1 : nd;
  // Not persistent: the block's one item, as a loop the compiler can see run once (the registers stay as they were).
  // Snake (t.snakeOrder): round r of G items goes to the blocks in reverse when r is odd, so a block that took a
  // round's heaviest item takes the next round's lightest.
  const next = t.snakeOrder ? '++round, ++item_n, item = round * item_stride + ((round & 1) ? item_stride - 1 - item0 : item0)' : 'item += item_stride, ++item_n';
  const itemLoop = `for (int ${t.snakeOrder ? 'round = 0, ' : ''}item = item0; item < n_items; ${t.persistent ? next : 'item = n_items'}) {`;
  return `extern "C" __global__ void __launch_bounds__(${threads}, ${t.ctas}) ${entry}(${sig}) {
  constexpr int HEAD_DIM = ${headDim}, BM = ${bm}, BN = ${bn}, STRIDE = ${stride}, STAGES = ${stages}, QBUF = ${qBuffers};
  constexpr int NCONSUMERS = ${consumers};  // consumer threads (warps 0 .. ${consumers / 32 - 1}); the producer warpgroup follows
  constexpr int CHUNKS = HEAD_DIM / 8;  // 16-byte chunks per row
${wgmmaSmem(stages, { count: qBuffers, elems: t.persistent ? wgmmaQElems(bm, headDim, stride) : bm * headDim }, t.rowSumMma)}
${spec.tableDecls(bm, bn, stages).join('\n')}
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  // ---- work items: (query block, head, batch). Block b takes items b, b + G, b + 2G, ... of the G blocks launched:
  // with the grid [m_blocks, Hq, B] exactly one, ${t.persistent ? `with fewer (abi.persistent: one per SM slot) several in turn.
  // Item i is query block m_blocks - 1 - i / (Hq * B) of every head and batch: the heaviest blocks of a causal
  // mask first, so that each round of G items costs about the same and the static round robin ends evenly
  // (longest processing time first); a window's short first blocks come last${t.snakeOrder ? '. Odd rounds run in reverse (snake)' : ''}` : 'which this kernel needs (its O staging runs over K\'s first stage)'}. ----
  const int m_blocks = (Nq + BM - 1) / BM, n_items = m_blocks * Hq * B;
  const int item0 = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z)${t.persistent ? ', item_stride = gridDim.x * gridDim.y * gridDim.z' : ''};

  // ---- hand-over: full[s] = stage s loaded, empty[s] = stage s read by every consumer; q_full[b] = Q buffer b
  // loaded, q_empty[b] = every consumer is done with it (O staged and stored);
  // slot[s] = 2 * (tile number) + (1 if its mask is evaluated per element), or -1: the item has no more tiles ----
  __shared__ __align__(8) unsigned long long attnc_bar[2 * STAGES + 2 * QBUF];
  __shared__ int attnc_slot[STAGES];
  const unsigned bar_full = attnc_smem_addr(&attnc_bar[0]), bar_empty = attnc_smem_addr(&attnc_bar[STAGES]);
  const unsigned bar_q = attnc_smem_addr(&attnc_bar[2 * STAGES]), bar_q_empty = attnc_smem_addr(&attnc_bar[2 * STAGES + QBUF]);
  if (tid == 0) {
    for (int b = 0; b < STAGES; ++b) { attnc_mbar_init(bar_full + 8 * b, ${PRODUCER_THREADS}); attnc_mbar_init(bar_empty + 8 * b, NCONSUMERS); }
    for (int b = 0; b < QBUF; ++b) { attnc_mbar_init(bar_q + 8 * b, ${PRODUCER_THREADS}); attnc_mbar_init(bar_q_empty + 8 * b, NCONSUMERS); }
  }${t.rowSumMma ? `
  if (tid < ${WGMMA_ONES_BYTES / 4}) {  // the tile of ones, two per thread, made visible to the tensor cores (async proxy)
    reinterpret_cast<unsigned*>(sOnes)[tid] = attnc_ones_x2();
    attnc_fence_async_smem();
  }` : ''}
  __syncthreads();  // the last block-wide barrier: from here on each role synchronizes on its own

  // Both roles walk the same items and count the same stage uses: use k of the block (every tile of every item,
  // and each item's end marker) is stage k % STAGES for the (k / STAGES)-th time; the block's item_n-th item uses Q buffer item_n % QBUF.
  int k = 0, item_n = 0;
  if (warp >= NCONSUMERS / 32) {
    // ================= producer warpgroup =================
    attnc_setmaxnreg_dec<${t.producerRegs}>();
    // The staging code below runs on this warpgroup alone: its thread index and count shadow the block's.
    const int tid = threadIdx.x - NCONSUMERS;
    constexpr int NTHREADS = ${PRODUCER_THREADS};${spec.tilePerThread ? '\n    int tw_buf = 1;  // the tile window\'s buffer (cuda-spec.ts tileClassifier), carried from item to item' : ''}
    ${itemLoop}
${indent(itemDecode(true, t.persistent), 2)}
      // Its budget is small (setmaxnreg): the copy loop is unrolled by 2 and table scans keep 2 loads in flight,
      // which is enough for a warpgroup that only has to stay a stage ahead (fully unrolled, it spills).
${indent(kvStaging(spec, 'unsigned short', 8, bm, bn, PRODUCER_THREADS, { kvDst: wgmmaKvDst, sync: `attnc_bar_sync(2, ${PRODUCER_THREADS})`, scanBatch: String(t.scanBatch), copyUnroll: 2, windowBufferOutside: true, immediateRows: { headDim, rowBytes: WGMMA_KV_ROW_BYTES }, diagCarry: t.diagCarry }), 2)}
      if (item_n >= QBUF) attnc_mbar_wait(bar_q_empty + 8 * qb, (item_n / QBUF - 1) & 1);  // the O of item item_n - QBUF is out
${indent(wgmmaQLoad(), 2)}
      attnc_mbar_track_cp(bar_q + 8 * qb);
      attnc_mbar_arrive(bar_q + 8 * qb);
      // The item's live tiles, then its end marker, each in the next stage once the consumers gave it back.
      for (int j = next_live(0);; ++k) {
        const int st = k % STAGES;
        if (k >= STAGES) attnc_mbar_wait(bar_empty + 8 * st, (k / STAGES - 1) & 1);
        const bool more = j < n_tiles;
        const bool part = more && tile_partial(j);  // every producer thread: the test may use warp collectives
        if (tid == 0) attnc_slot[st] = more ? 2 * j + (part ? 1 : 0) : -1;
        if (more) { load_kv(j, st); fill_tables(j, st); }
        attnc_mbar_track_cp(bar_full + 8 * st);
        attnc_mbar_arrive(bar_full + 8 * st);  // releases the slot and the table stores
        if (!more) { ++k; break; }
        j = next_live(j + 1);
      }
    }
  } else {
    // ================= consumer warpgroups =================
    attnc_setmaxnreg_inc<${t.consumerRegs}>();${t.pingpong ? `
    // Pingpong: warpgroup 0 issues first. Each turn ends with an arrive for the other's barrier, and the loops of
    // both run the same tiles, so the last turn's arrive is the next item's first (one is left at the end).
    const int wg = warp >> 2;
    if (wg == 1) attnc_bar_arrive(3, NCONSUMERS);` : ''}
    ${itemLoop}
${indent(itemDecode(false, t.persistent), 2)}
      // ---- values per (batch, head) and per query row (row slot i: rows g and g + 8 of the warp's 16) ----
${indent(spec.headLines.join('\n'), 2)}
${indent(spec.rowDecls(2).join('\n'), 2)}
      #pragma unroll
      for (int i = 0; i < 2; ++i) {
        (void)i;
${indent(spec.rowFill('q0 + warp * 16 + g + 8 * (i & 1)').join('\n'), 2)}
      }
${indent(wgmmaConsumerInit(nd, t.rowSumMma), 2)}
      attnc_mbar_wait(bar_q + 8 * qb, (item_n / QBUF) & 1);

${indent(t.overlap ? overlappedLoop(spec, nt, ndO, bn, halves, sm, { earlyPvWait: t.earlyPvWait, rescaleInSoftmax: t.rescaleInSoftmax, packedRefCheck: t.packedRefCheck, pingpong: t.pingpong, diagPrefetch: t.diagPrefetch }, rowSumTile) : serialLoop(spec, nt, ndO, bn, halves, sm, t.diagPrefetch, rowSumTile))}
      // Every consumer warpgroup is done with Q (all copies have landed: each stage was waited for)
      // before O is staged over it.
      attnc_bar_sync(1, NCONSUMERS);

${indent(epilogueCode(1, nd, 16, t.rowSumMma), 2)}
      attnc_mbar_arrive(bar_q_empty + 8 * qb);  // this thread's rows of the buffer are stored
    }
  }
}
`;
}

/** Where work item \`item\` points: its query block, head and batch, and its Q buffer. */
function itemDecode(kvHead: boolean, persistent: boolean): string {
  // One item per block: read off the block index (the same item, in fewer registers than the division).
  const where = persistent
    ? 'm_block = m_blocks - 1 - item / (Hq * B), hq = item % Hq, bb = item / Hq % B'
    : 'm_block = gridDim.x - 1 - blockIdx.x, hq = blockIdx.y, bb = blockIdx.z';
  return `  const int ${where}${kvHead ? ', hk = hq / (Hq / Hkv)' : ''};
  const int row0 = m_block * BM;
  const int q0 = row0 + (Nk - Nq);  // q_idx of the item's first row (bottom-right aligned)
  const int qb = QBUF > 1 ? item_n % QBUF : 0;
  unsigned short* const sQ = sQ0 + qb * QELEMS;`;
}

/**
 * One tile at a time: S = Q K^T, softmax, O += P V, each waited for before the next.
 * (nd counts O's n8 tiles with the row sums' one, rowSumTile, where the tensor cores take them.)
 */
function serialLoop(spec: SpecCode, nt: number, nd: number, bn: number, halves: number, sm: SoftmaxOptions, dp: boolean, rowSumTile?: number): string {
  return `    for (;; ++k) {
      const int stage = k % STAGES;
      attnc_mbar_wait(bar_full + 8 * stage, (k / STAGES) & 1);
      const int slot = attnc_slot[stage];
      if (slot < 0) { attnc_mbar_arrive(bar_empty + 8 * stage); ++k; break; }  // the end marker's stage goes back too
      attnc_fence_async_smem();  // the copies are seen by the tensor cores (async proxy) too
      const int kv0 = (slot >> 1) * BN;
${indent(wgmmaStageDescs)}

${indent(wgmmaQK(nt))}${prefetch(spec, dp, nt, bn, 'stage', 3)}
      attnc_wg_wait<0>();

${indent(logitsCode(spec, nt, bn, 'slot', sm.fold != null, dp))}

${indent(softmaxCode(1, nt, nd, sm))}

${indent(wgmmaPV(bn, halves, rowSumTile))}
      attnc_mbar_arrive(bar_empty + 8 * stage);  // this thread is done with the stage
    }`;
}

/**
 * FlashAttention-3's GEMM-softmax overlap within a warpgroup: tile k+1's S = Q K^T
 * and tile k's O += P V are issued together, and tile k+1's logits and softmax run
 * while P V is still on the tensor cores; O's rescale waits for it. P of tile k
 * lives in a[][] across the iteration, S of tile k+1 in s[][]: BN/16*4 + BN/2
 * registers on top of O, which is why this needs the consumers' setmaxnreg budget.
 */
function overlappedLoop(spec: SpecCode, nt: number, nd: number, bn: number, halves: number, sm: SoftmaxOptions, o: { earlyPvWait: boolean; rescaleInSoftmax: boolean; packedRefCheck: boolean; pingpong: boolean; diagPrefetch: boolean }, rowSumTile?: number): string {
  const { earlyPvWait, rescaleInSoftmax, packedRefCheck, pingpong, diagPrefetch: dp } = o;
  // The loop's softmax and pack of tile k + 1 (into a[][], free once P V of tile k is done).
  const softmaxAndPack = packedRefCheck ? checkedSoftmax(nt, nd, bn, sm) : `${indent(softmaxCode(1, nt, nd, { ...sm, deferRescale: !rescaleInSoftmax }), 4)}`;
  return `    unsigned a[${bn / 16}][4];  // P of tile k (the A fragments of its P V)${rescaleInSoftmax ? '' : `
    float alpha_i[2];`}
    // The item's first tile: S, logits and softmax, packed into a[][].
    attnc_mbar_wait(bar_full + 8 * (k % STAGES), (k / STAGES) & 1);
    const int slot = attnc_slot[k % STAGES];
    if (slot >= 0) {
      attnc_fence_async_smem();  // the copies are seen by the tensor cores (async proxy) too
      {
        const int stage = k % STAGES, kv0 = (slot >> 1) * BN;  // stage: what the element loop's table reads index
        const unsigned long long k_desc = ${stageDesc('k', 'stage')};
${indent(wgmmaQK(nt), 4)}${prefetch(spec, dp, nt, bn, 'stage', 4)}
        attnc_wg_wait<0>();
${indent(logitsCode(spec, nt, bn, 'slot', sm.fold != null, dp), 4)}
${indent(softmaxCode(1, nt, nd, sm), 4)}
${indent(wgmmaPack(bn), 4)}
      }
      for (;; ++k) {
        const int stage = k % STAGES, nstage = (k + 1) % STAGES;
        attnc_mbar_wait(bar_full + 8 * nstage, ((k + 1) / STAGES) & 1);
        const int nslot = attnc_slot[nstage];
        if (nslot < 0) break;
        attnc_fence_async_smem();
        const unsigned long long k_desc = ${stageDesc('k', 'nstage')};
        const unsigned long long v_desc = ${stageDesc('v', 'stage')};
        // S of tile k + 1, then O += P V of tile k behind it: issued, not waited for${pingpong ? `
        if (wg == 0) attnc_bar_sync(3, NCONSUMERS); else attnc_bar_sync(4, NCONSUMERS);  // this warpgroup's turn at the tensor cores` : ''}
${indent(wgmmaQK(nt), 2)}
${indent(wgmmaPVIssue(bn, halves, rowSumTile), 2)}${pingpong ? `
        if (wg == 0) attnc_bar_arrive(4, NCONSUMERS); else attnc_bar_arrive(3, NCONSUMERS);  // the other warpgroup's turn` : ''}${prefetch(spec, dp, nt, bn, 'nstage', 4)}
        attnc_wg_wait<1>();  // S of tile k + 1 is in; P V of tile k may still run
        {
          const int kv0 = (nslot >> 1) * BN;
          const int pv_stage = stage;
          const int slot = nslot, stage = nstage;  // the element loop reads tile k + 1's tables
          (void)stage; (void)pv_stage;
${indent(logitsCode(spec, nt, bn, 'slot', sm.fold != null, dp), 4)}${earlyPvWait ? `
          ${pvDone('pv_stage')}` : ''}
${softmaxAndPack}
        }${earlyPvWait ? '' : `
        ${pvDone('stage')}`}${rescaleInSoftmax ? '' : `
${indent(rescaleCode(1, nd, sm.lazyRescale), 2)}`}${packedRefCheck ? '' : `
${indent(wgmmaPack(bn), 2)}`}
      }
      // The last tile's O += P V.
      const int stage = k % STAGES;
      const unsigned long long v_desc = ${stageDesc('v', 'stage')};
${indent(wgmmaPVIssue(bn, halves, rowSumTile), 1)}
      attnc_wg_wait<0>();
      attnc_mbar_arrive(bar_empty + 8 * stage);
      ++k;  // the end marker's use
    }
    attnc_mbar_arrive(bar_empty + 8 * (k % STAGES));  // the end marker's stage goes back too
    ++k;`;
}

/**
 * CudaTiles.packedRefCheck: the zero reference's path without a max per logit. A warp whose rows all sit at
 * reference 0 takes P = 2^x of each logit straight into a[][] and then checks the largest packed P (two halves an
 * instruction) against 2^high, the window's top; where a P passes it, the warp runs the general path on S, which
 * still holds the logits, and packs again. The first tile of a row always takes the general path (its reference is
 * -inf until then), which decides whether the row starts at 0.
 */
function checkedSoftmax(nt: number, nd: number, bn: number, sm: SoftmaxOptions): string {
  const zr = sm.zeroRef!;
  const kSteps = bn / 16;
  return `          // online softmax, first the zero reference's path, checked on P as packed: with every row of the warp at
          // reference 0, P = 2^x straight into P V's fragments, then the largest P against 2^${zr.high}
          bool p_ok = false;
          if (__all_sync(0xffffffffu, m_i[0] == 0.f && m_i[1] == 0.f)) {
${indent(wgmmaPack(bn, (x) => `attnc_ex2(${x})`), 5)}
            unsigned p_max[${kSteps}];
            #pragma unroll
            for (int kk = 0; kk < ${kSteps}; ++kk) p_max[kk] = attnc_max_x2(attnc_max_x2(a[kk][0], a[kk][1]), attnc_max_x2(a[kk][2], a[kk][3]));
            #pragma unroll
            for (int kk = 1; kk < ${kSteps}; ++kk) p_max[0] = attnc_max_x2(p_max[0], p_max[kk]);
            const unsigned p_top = attnc_pack(${2 ** zr.high}.0f, ${2 ** zr.high}.0f);  // 2^${zr.high} in both halves, exact
            p_ok = __all_sync(0xffffffffu, attnc_max_x2(p_max[0], p_top) == p_top);
          }
          if (!p_ok) {  // a row off reference 0, or a logit above ${zr.high}: the general path on the logits in S
${indent(softmaxCode(1, nt, nd, { ...sm, deferRescale: false, zeroRefCheck: 'packed' }), 5)}
${indent(wgmmaPack(bn), 5)}
          }`;
}

/** Tile k's P V is done: its stage goes back, and O can be rescaled and a[][] rewritten. */
const pvDone = (stage: string) => `attnc_wg_wait<0>();  // P V of tile k is done: its stage goes back, O can be rescaled, a[][] rewritten
        attnc_mbar_arrive(bar_empty + 8 * ${stage});`;

/** The element loop: the mask per element only where the producer's tile test said partial (slot & 1). */
function logitsCode(spec: SpecCode, nt: number, bn: number, slot: string, raw: boolean, diagRegs: boolean): string {
  return `    // logits in the log2 domain; the mask only where the producer's tile test said partial
    if (${slot} & 1) {
${elemLoopCode(spec, true, 1, nt, 16, bn, raw, diagRegs)}
    } else {
${elemLoopCode(spec, false, 1, nt, 16, bn, raw, diagRegs)}
    }`;
}

/** With CudaTiles.diagPrefetch, the tile's per-diagonal values for the element loop, read while its S is computed. */
function prefetch(spec: SpecCode, on: boolean, nt: number, bn: number, stage: string, levels: number): string {
  return on ? `\n${indent(spec.diagPrefetch(nt, bn, stage).join('\n'), levels)}` : '';
}
