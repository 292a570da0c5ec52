// attnc's CUDA emulator: runs a generated CUDA-C kernel on the CPU, for tests on machines without an NVIDIA GPU.
//
// The kernel source is compiled by the host C++ compiler with this header in front; src/runtime/cuda-emu.ts has
// already cut out every inline-PTX wrapper of the source (attnc_mma, attnc_wgmma_*, attnc_cp_async*, mbarriers, ...),
// and this header defines them again from the PTX ISA's documented semantics:
//   - every thread of a block is a fiber with its own stack (a context switch of a few instructions on x86-64,
//     ucontext elsewhere), run by a round-robin scheduler; a thread
//     runs until it waits (barrier, warp or warpgroup collective, mbarrier) and the scheduler moves on;
//   - warp collectives (shuffles, votes, ldmatrix, mma.sync) and warpgroup ones (wgmma) complete when the last of
//     the 32 (128) threads arrives, which computes every thread's result from every thread's operands; threads of one
//     warp at different collectives, or at a warpgroup MMA with different descriptors, stop the launch with an error;
//   - wgmma reads shared memory through its 64-bit descriptor (start, LBO, SBO, swizzle) with the canonical
//     layouts (K-major and MN-major, 128-byte swizzle: address bits 4-6 XOR bits 7-9; no swizzle: 8x8 core matrices);
//   - cp.async lands at the latest point PTX allows: a thread's copies stay pending (their source read at issue) until
//     its cp.async.wait_group (the groups older than the N it may leave), wait_all, or the mbarrier that tracks them;
//     so a read of a copy's destination that no wait orders after it sees the poison, not the data;
//   - wgmma reads its operands at issue, but its results land at the latest point PTX allows: the accumulator
//     registers read NaN from the issue until the wgmma.wait_group that leaves its commit group behind (a later
//     wgmma of the same accumulator chains on the pending result, as the tensor cores do), so a read of a product
//     that no wait orders after it sees the poison; its fence is a no-op, as are fence.proxy.async and setmaxnreg;
//   - PTX lets wgmma read its shared-memory operands until it completes, so they must not change before then: each
//     wgmma keeps a hash of what it read, and the first wait of its warpgroup that retires it reads them again; a
//     difference stops the launch (a write racing the tensor cores' reads, e.g. one warpgroup rewriting a tile
//     another's product still reads);
//   - all shared memory (the dynamic arena and the kernels' __shared__ arrays) lives in one section, filled with
//     0xff (NaN) before each block, so a read of shared memory nothing wrote shows as NaN; bytes past the dynamic
//     shared memory the launch asked for are checked after each block; global buffers end in 256 bytes of 0xff,
//     read as NaN and checked after each launch;
//   - a pass of the scheduler in which no thread made progress is a deadlock, reported with what each thread waits on;
//   - attnc_emu_schedule(1 or 2, ...) makes the scheduler run one warpgroup as far as it can go before the next (in
//     order, or last first): warpgroups drift as far apart as the kernel's synchronization allows, which is where the
//     races above show (0, round-robin, is the default); attnc_emu_schedule(..., 1) lands cp.async at issue, the
//     earliest point, where a copy into a tile that a pending wgmma still reads shows (late, at the wait, shows a read
//     that comes too early: both are PTX's bounds, run in turn).
// What it does not model: timing, races between threads (the GPU's compute-sanitizer does), the order of f32
// additions inside the tensor cores, and ex2.approx's last bits. It tests what a kernel computes, not how fast.
#pragma once
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <sys/mman.h>
#include <type_traits>
#include <ucontext.h>
#include <utility>
#include <vector>

namespace emu {
struct Dim3 { unsigned x = 1, y = 1, z = 1; };

// The context switch: x86-64 saves the callee-saved registers on the old stack and swaps stack pointers (no system
// call; ucontext's swapcontext makes one per switch to save the signal mask, which dominated the emulator's time).
#if defined(__x86_64__)
struct Context { void* sp = nullptr; };
extern "C" void attnc_emu_switch(void** save_sp, void* to_sp);
asm(R"(
  .text
  .hidden attnc_emu_switch
  .globl attnc_emu_switch
  .type attnc_emu_switch, @function
attnc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size attnc_emu_switch, .-attnc_emu_switch
)");
inline void switch_to(Context& from, Context& to) { attnc_emu_switch(&from.sp, to.sp); }
// A fresh fiber: six zero registers, then `entry` as the return address, 16-byte aligned as a call would leave it.
inline void start_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  uintptr_t top = (uintptr_t(stack) + bytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 16);  // the return slot at a 16-byte boundary: entry sees rsp % 16 == 8
  sp[0] = reinterpret_cast<void*>(entry);
  sp[1] = nullptr;
  for (int i = 1; i <= 6; ++i) sp[-i] = nullptr;
  c.sp = sp - 6;
}
#else
struct Context { ucontext_t uc; };
inline void switch_to(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void start_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
  Context ctx;
  Dim3 tid;
  int linear = 0;
  bool done = false;
  const char* waiting = nullptr;  // what it waits on when it yields
  char* stack = nullptr;
  // cp.async copies issued and not yet landed: destination, bytes (0-filled when !valid), the data read at issue,
  // and the commit group they belong to (the count of groups committed before them).
  struct Copy { unsigned dst, bytes; bool valid; unsigned char data[16]; int group; };
  std::vector<Copy> copies;
  int committed = 0;
  // wgmma results not yet landed: the accumulator registers, how many, the result, and the commit group (the count
  // of wgmma groups committed before its issue); they land at the wgmma.wait_group that leaves the group behind.
  struct WgResult { float* d; int count; int group; float r[128]; std::vector<std::shared_ptr<struct WgOperands>> ops; };
  std::vector<WgResult> wg_pending;
  int wg_committed = 0;
  // Bulk reductions to global memory issued and not yet done: they read their shared memory at the latest point PTX
  // allows, the cp.async.bulk.wait_group(.read) that leaves their group behind, so a tile rewritten before it is waited
  // for gives a wrong sum; one still pending when the thread exits is an error.
  struct Bulk { float* dst; unsigned src, bytes; int group; };
  std::vector<Bulk> bulk;
  int bulk_committed = 0;
};

constexpr size_t STACK_BYTES = 512 * 1024;
constexpr size_t SHARED_BYTES = 240 * 1024;  // the dynamic arena: 227 KiB is Hopper's opt-in maximum

inline Context scheduler;
inline Fiber* cur = nullptr;
inline std::vector<Fiber> fibers;
inline unsigned long long progress = 0;
inline int schedule_mode = 0;  // 0 round-robin; 1, 2: a warpgroup as far as it goes, in order or last first
inline bool copies_early = false;  // cp.async lands at issue instead of at its wait
inline char error_text[1024] = "";
inline bool failed = false;
inline void (*block_body)() = nullptr;

// The shared section: the arena first (1 KiB aligned, as the swizzled layouts need), then every __shared__ array.
#define EMU_SHARED_SECTION __attribute__((section("attnc_emu_shared")))
alignas(1024) EMU_SHARED_SECTION static unsigned char arena[SHARED_BYTES];
}  // namespace emu
extern "C" char __start_attnc_emu_shared[], __stop_attnc_emu_shared[];

namespace emu {
// Global memory: every allocation is followed by GUARD bytes of 0xff (NaN), so a read past its end reads NaN and a
// write past its end is found after the launch (check_guards).
constexpr size_t GUARD = 256;
struct Allocation { unsigned char* p; size_t bytes; };
inline std::vector<Allocation> allocations;

inline unsigned char* dyn_base = nullptr;  // the dynamic shared memory of the running launch
inline size_t dyn_bytes = 0;
constexpr size_t DYN_OFFSET = 48;  // as static shared memory before it would: the kernel aligns its base itself

[[noreturn]] inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void fail(const char* fmt, ...) {
  if (!failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    va_end(ap);
    failed = true;
  }
  for (;;) { cur->waiting = "a failed launch"; switch_to(cur->ctx, scheduler); }
}

inline void yield(const char* what) {
  cur->waiting = what;
  switch_to(cur->ctx, scheduler);
  cur->waiting = nullptr;
}

// Shared addresses are offsets from the start of the shared section (1 KiB aligned), so their low bits are the
// host address's: the kernels' own alignment of the dynamic base and the swizzle see what they would on the GPU.
inline unsigned char* shared_base() { return reinterpret_cast<unsigned char*>(__start_attnc_emu_shared); }
inline unsigned smem_addr(const void* p) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  if (c < shared_base() || c >= reinterpret_cast<unsigned char*>(__stop_attnc_emu_shared)) fail("shared address of a pointer outside shared memory (%p)", p);
  return unsigned(c - shared_base());
}
inline unsigned char* shared_at(unsigned addr, unsigned bytes) {
  unsigned char* p = shared_base() + addr;
  if (p + bytes > reinterpret_cast<unsigned char*>(__stop_attnc_emu_shared)) fail("shared access at 0x%x (+%u) past shared memory", addr, bytes);
  if (p >= arena && p < arena + SHARED_BYTES && (p < dyn_base || p + bytes > dyn_base + dyn_bytes))
    fail("shared access at 0x%x (+%u) outside the launch's %zu bytes of dynamic shared memory", addr, bytes, dyn_bytes);
  return p;
}

// ---- collectives: a group of `n` threads (a warp, a warpgroup) that all arrive before any leaves ----
struct Slot { int op; void* data; };
struct Group { int arrived = 0; unsigned gen = 0; Slot slots[128]; };
inline std::vector<Group> warps, warpgroups;

template <class F> void collective(std::vector<Group>& groups, int n, int op, void* data, const char* what, F&& complete) {
  Group& g = groups[cur->linear / n];
  const int me = cur->linear % n;
  g.slots[me] = {op, data};
  const unsigned gen = g.gen;
  ++progress;
  if (++g.arrived == n) {
    for (int i = 0; i < n; ++i)
      if (g.slots[i].op != op) fail("thread %d of a group of %d is at another collective than thread %d (%s)", i, n, me, what);
    g.arrived = 0;
    ++g.gen;
    complete(g.slots);
  } else {
    while (g.gen == gen) yield(what);
  }
}
template <class T> T& slot(Slot* s, int i) { return *static_cast<T*>(s[i].data); }

enum Op { SHFL_XOR = 1, BALLOT, ANY, ALL, SYNCWARP, LDSM, LDSM_T, MMA, WGMMA_SS, WGMMA_SS_T, WGMMA_RS, WGMMA_RS_ONES };

// ---- block barriers (bar.sync / bar.arrive; __syncthreads is barrier 0 of the whole block) ----
struct Barrier { int arrived = 0; unsigned gen = 0; int expected = 0; };
inline Barrier barriers[16];
inline void bar_arrive_impl(int id, int n, bool wait) {
  if (id < 0 || id >= 16) fail("named barrier %d out of range", id);
  Barrier& b = barriers[id];
  if (b.arrived && b.expected != n) fail("barrier %d: arrivals expecting %d and %d threads", id, b.expected, n);
  b.expected = n;
  const unsigned gen = b.gen;
  ++progress;
  if (++b.arrived == n) { b.arrived = 0; ++b.gen; return; }
  if (wait) while (b.gen == gen) yield("a block barrier");
}

// ---- numbers ----
inline float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
inline uint32_t f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
inline float half_to_f(uint16_t h) {
  const uint32_t s = uint32_t(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
  if (e == 31) return bits_f(s | 0x7f800000u | (m << 13));
  if (e) return bits_f(s | ((e + 112) << 23) | (m << 13));
  return (s ? -1.f : 1.f) * std::ldexp(float(m), -24);
}
inline uint16_t f_to_half(float f) {  // round to nearest even, overflow to inf
  const uint32_t u = f_bits(f), s = (u >> 16) & 0x8000;
  const float a = std::fabs(f);
  if (std::isnan(f)) return uint16_t(s | 0x7e00);
  if (a >= 65520.f) return uint16_t(s | 0x7c00);
  if (a < 6.103515625e-05f) return uint16_t(s | uint32_t(std::nearbyint(a * 16777216.f)));  // subnormal: m * 2^-24
  const int e = int((u >> 23) & 255) - 127;
  uint32_t m = (u & 0x7fffff) | 0x800000;
  uint32_t r = m >> 13, rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  uint32_t h = (uint32_t(e + 15) << 10) + (r - 0x400);
  return uint16_t(s | h);
}
inline float bf16_to_f(uint16_t h) { return bits_f(uint32_t(h) << 16); }
inline uint16_t f_to_bf16(float f) {
  const uint32_t u = f_bits(f);
  if (std::isnan(f)) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
#if defined(EMU_BF16)
inline float elem(uint16_t h) { return bf16_to_f(h); }
inline uint16_t to_elem(float f) { return f_to_bf16(f); }
#else
inline float elem(uint16_t h) { return half_to_f(h); }
inline uint16_t to_elem(float f) { return f_to_half(f); }
#endif
inline float lo_of(uint32_t r) { return elem(uint16_t(r & 0xffff)); }
inline float hi_of(uint32_t r) { return elem(uint16_t(r >> 16)); }
inline float shared_elem(unsigned addr) { uint16_t h; memcpy(&h, shared_at(addr, 2), 2); return elem(h); }

// ---- wgmma's shared-memory operands, read through their descriptors ----
struct Desc { unsigned start, lbo, sbo, swizzle; };
inline Desc decode(unsigned long long d) {
  return {unsigned(d & 0x3fff) << 4, unsigned((d >> 16) & 0x3fff) << 4, unsigned((d >> 32) & 0x3fff) << 4, unsigned(d >> 62)};
}
inline unsigned swizzled(unsigned addr, unsigned mode) {
  if (mode == 0) return addr;
  if (mode != 1) fail("wgmma descriptor with swizzle mode %u (only 128-byte and none are emulated)", mode);
  return addr ^ (((addr >> 7) & 7) << 4);
}
// Element (mn, k) of a K-major operand (k < 16): rows of 128 bytes in groups of 8 (SBO apart) with 128-byte swizzle;
// without swizzle, 8x8 core matrices of 128 bytes, LBO apart along K and SBO apart along M/N.
inline float kmajor(const Desc& d, int mn, int k) {
  if (d.swizzle) return shared_elem(swizzled(d.start + (mn / 8) * d.sbo + (mn % 8) * 128 + k * 2, d.swizzle));
  return shared_elem(d.start + (k / 8) * d.lbo + (mn / 8) * d.sbo + (mn % 8) * 16 + (k % 8) * 2);
}
// Element (k, mn) of an MN-major operand (k < 16): 64 elements of M/N per 128-byte row, 8 rows of K per swizzle
// atom, atoms SBO apart along K and LBO apart along M/N.
inline float mnmajor(const Desc& d, int k, int mn) {
  if (!d.swizzle) fail("wgmma: an MN-major operand without swizzle is not emulated");
  return shared_elem(swizzled(d.start + (k / 8) * d.sbo + (mn / 64) * d.lbo + (k % 8) * 128 + (mn % 64) * 2, d.swizzle));
}
// The mma.sync m16n8k16 A fragment of one lane: a[r] holds (row g + 8 (r & 1), cols 2t + 8 (r >> 1) + {0, 1}).
inline void a_fragment_elems(const unsigned* a, int lane, float (*A)[16], int row0) {
  const int g = lane >> 2, t = lane & 3;
  for (int r = 0; r < 4; ++r) {
    const int row = row0 + g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
    A[row][col] = lo_of(a[r]);
    A[row][col + 1] = hi_of(a[r]);
  }
}
// The wgmma accumulator of one thread of the warpgroup: d[4j + {0,1}] row 16w + g, d[4j + {2,3}] row 16w + g + 8,
// cols 8j + 2t + {0, 1}.
template <class F> void for_accumulator(int thread, int n, F&& f) {
  const int w = thread / 32, lane = thread % 32, g = lane >> 2, t = lane & 3;
  for (int j = 0; j < n / 8; ++j)
    for (int r = 0; r < 4; ++r) f(4 * j + r, 16 * w + g + 8 * (r >> 1), 8 * j + 2 * t + (r & 1));
}
// What a wgmma read from shared memory (kind: 0 both operands K-major, 1 both MN-major, 2 B MN-major, 3 B the
// ones), hashed at issue and read again at the first wait that retires it (check_operands).
struct WgOperands { int kind, n; unsigned long long a, b; int group; uint64_t hash; bool checked; };
// Element (m, k) of its A operand (kinds 0 and 1) and (c, k) of its B operand, as its kind lays them out: what the
// product reads at issue and what the check reads again.
inline float operand_a(const WgOperands& o, const Desc& d, int m, int k) { return o.kind == 1 ? mnmajor(d, k, m) : kmajor(d, m, k); }
inline float operand_b(const WgOperands& o, const Desc& d, int c, int k) { return o.kind == 0 || o.kind == 3 ? kmajor(d, c, k) : mnmajor(d, k, c); }
inline uint64_t operand_hash(const WgOperands& o) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](float x) { uint32_t u; memcpy(&u, &x, 4); h = (h ^ u) * 1099511628211ull; };
  const Desc da = decode(o.a), db = decode(o.b);
  if (o.kind <= 1)
    for (int m = 0; m < 64; ++m) for (int k = 0; k < 16; ++k) mix(operand_a(o, da, m, k));
  for (int c = 0; c < o.n; ++c)
    for (int k = 0; k < 16; ++k) mix(operand_b(o, db, c, k));
  return h;
}
inline void check_operands(WgOperands& o) {
  if (o.checked) return;
  o.checked = true;
  if (operand_hash(o) != o.hash)
    fail("a wgmma's shared-memory operand changed before the wait that retires it (descriptors 0x%llx, 0x%llx): a write raced the tensor cores' reads", o.a, o.b);
}
inline std::shared_ptr<WgOperands> operands_of(int kind, int n, unsigned long long a, unsigned long long b, int group) {
  auto o = std::make_shared<WgOperands>(WgOperands{kind, n, a, b, group, 0, false});
  o->hash = operand_hash(*o);
  return o;
}

struct WgSS { float* d; unsigned long long a, b; int accumulate; Fiber* owner; };
struct WgRS { float* d; const unsigned* a; unsigned long long b; Fiber* owner; };

// The result in flight for a thread's accumulator registers `d`, or null.
inline Fiber::WgResult* wg_pending_of(Fiber* f, float* d) {
  for (auto& p : f->wg_pending) if (p.d == d) return &p;
  return nullptr;
}
// A thread's accumulator as a wgmma reads it: its pending result if one is in flight (products chain in issue
// order), else the registers.
inline const float* wg_input(Fiber* f, float* d) {
  Fiber::WgResult* e = wg_pending_of(f, d);
  return e ? e->r : d;
}
// A wgmma's result for one thread (`count` registers, at most 128): pending in the thread's open commit group, the
// registers poisoned until it lands.
inline void wg_pend(Fiber* f, float* d, int count, const float* r, const std::shared_ptr<WgOperands>& ops) {
  Fiber::WgResult* e = wg_pending_of(f, d);
  if (!e) { f->wg_pending.push_back({}); e = &f->wg_pending.back(); e->d = d; }
  e->count = count;
  e->group = f->wg_committed;
  e->ops.push_back(ops);
  std::memcpy(e->r, r, sizeof(float) * count);
  for (int i = 0; i < count; ++i) d[i] = std::numeric_limits<float>::quiet_NaN();
}

// Both operands from shared memory: K-major (S = Q K^T), or with `mn_major` both MN-major (imm-trans-a and -b set:
// the single pass's dQ = dS K, dS^T and K stored with the K dimension along rows).
template <int N, bool mn_major = false> void wgmma_ss(float* d, unsigned long long a, unsigned long long b, int accumulate) {
  static_assert(N <= 256, "wgmma: N is at most 256 (128 accumulator registers a thread)");
  WgSS me{d, a, b, accumulate, cur};
  collective(warpgroups, 128, mn_major ? WGMMA_SS_T : WGMMA_SS, &me, mn_major ? "wgmma (shared A and B, MN-major)" : "wgmma (shared A and B)", [](Slot* s) {
    const WgSS& x = slot<WgSS>(s, 0);
    for (int i = 1; i < 128; ++i) {
      const WgSS& y = slot<WgSS>(s, i);
      if (y.a != x.a || y.b != x.b || y.accumulate != x.accumulate) fail("wgmma: thread %d of the warpgroup has other descriptors than thread 0", i);
    }
    const Desc da = decode(x.a), db = decode(x.b);
    const auto ops = operands_of(mn_major ? 1 : 0, N, x.a, x.b, x.owner->wg_committed);
    static float A[64][16], Bm[256][16];
    for (int m = 0; m < 64; ++m) for (int k = 0; k < 16; ++k) A[m][k] = operand_a(*ops, da, m, k);
    for (int n = 0; n < N; ++n) for (int k = 0; k < 16; ++k) Bm[n][k] = operand_b(*ops, db, n, k);
    for (int th = 0; th < 128; ++th) {
      const WgSS& y = slot<WgSS>(s, th);
      const float* in = wg_input(y.owner, y.d);
      float r[128];
      for_accumulator(th, N, [&](int i, int m, int n) {
        float acc = x.accumulate ? in[i] : 0.f;
        for (int k = 0; k < 16; ++k) acc = std::fma(A[m][k], Bm[n][k], acc);
        r[i] = acc;
      });
      wg_pend(y.owner, y.d, N / 2, r, ops);
    }
  });
}
inline void wgmma_rs(float* d, const unsigned* a, unsigned long long b, int n, bool ones) {
  if (n > 256) fail("wgmma: N %d (at most 256: 128 accumulator registers a thread)", n);
  WgRS me{d, a, b, cur};
  collective(warpgroups, 128, ones ? WGMMA_RS_ONES : WGMMA_RS, &me, "wgmma (A from registers)", [n, ones](Slot* s) {
    const WgRS& x = slot<WgRS>(s, 0);
    for (int i = 1; i < 128; ++i)
      if (slot<WgRS>(s, i).b != x.b) fail("wgmma: thread %d of the warpgroup has another B descriptor than thread 0", i);
    static float A[64][16], Bm[16][64];
    for (int th = 0; th < 128; ++th) a_fragment_elems(slot<WgRS>(s, th).a, th % 32, A, 16 * (th / 32));
    const Desc db = decode(x.b);
    const auto ops = operands_of(ones ? 3 : 2, n, 0, x.b, x.owner->wg_committed);
    // B[k][n]: N-major (transposed) with 128-byte swizzle for P V, K-major without swizzle for the ones.
    for (int k = 0; k < 16; ++k) for (int c = 0; c < n; ++c) Bm[k][c] = operand_b(*ops, db, c, k);
    for (int th = 0; th < 128; ++th) {
      const WgRS& y = slot<WgRS>(s, th);
      const float* in = wg_input(y.owner, y.d);
      float r[128];
      for_accumulator(th, n, [&](int i, int m, int c) {
        float acc = in[i];
        for (int k = 0; k < 16; ++k) acc = std::fma(A[m][k], Bm[k][c], acc);
        r[i] = acc;
      });
      wg_pend(y.owner, y.d, n / 2, r, ops);
    }
  });
}

// ---- the launch ----
inline void fiber_entry() {
  block_body();
  if (!cur->bulk.empty()) fail("a bulk reduction is still pending when the thread exits (no cp.async.bulk.wait_group)");
  cur->done = true;
  ++progress;
  switch_to(cur->ctx, scheduler);
}

template <class... A, size_t... I> void call_with(void (*k)(A...), void** args, std::index_sequence<I...>) {
  k(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}


// Runs every block of the grid, one after another, each with all its threads; 0 on success, else 1 and error_text.
template <class... A> int launch(void (*kernel)(A...), void** args, int nargs, Dim3 grid, Dim3 block, unsigned smem_bytes);
}  // namespace emu

// ---- what CUDA-C provides ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static EMU_SHARED_SECTION
inline emu::Dim3 blockIdx, blockDim, gridDim;
#define threadIdx (emu::cur->tid)

template <class A, class B> inline auto min(A a, B b) -> std::common_type_t<A, B> { return a < b ? a : b; }
template <class A, class B> inline auto max(A a, B b) -> std::common_type_t<A, B> { return a < b ? b : a; }
inline float __int_as_float(int x) { return emu::bits_f(uint32_t(x)); }
inline float __uint_as_float(unsigned x) { return emu::bits_f(x); }
inline int __float_as_int(float x) { return int(emu::f_bits(x)); }
inline unsigned __float_as_uint(float x) { return emu::f_bits(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffs(unsigned x) { return __builtin_ffs(int(x)); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x ? __builtin_clz(unsigned(x)) : 32; }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
struct uint4 { unsigned x, y, z, w; };
struct int4 { int x, y, z, w; };
struct uint2 { unsigned x, y; };
struct float2 { float x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
struct float4 { float x, y, z, w; };

inline void __syncthreads() { emu::bar_arrive_impl(0, int(blockDim.x * blockDim.y * blockDim.z), true); }
inline void emu_full_mask(unsigned mask, const char* what) {
  if (mask != 0xffffffffu) emu::fail("%s with mask 0x%08x (only whole warps are emulated)", what, mask);
}
template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  emu_full_mask(mask, "__shfl_xor_sync");
  if (width != 32) emu::fail("__shfl_xor_sync of width %d", width);
  struct X { T v; int m; T out; } me{v, lane_mask, T()};
  emu::collective(emu::warps, 32, emu::SHFL_XOR, &me, "__shfl_xor_sync", [](emu::Slot* s) {
    for (int l = 0; l < 32; ++l) { X& x = emu::slot<X>(s, l); x.out = emu::slot<X>(s, (l ^ x.m) & 31).v; }
  });
  return me.out;
}
struct EmuVote { bool p; unsigned out; };
inline unsigned emu_vote(unsigned mask, bool p, int op, const char* what) {
  emu_full_mask(mask, what);
  EmuVote me{p, 0};
  emu::collective(emu::warps, 32, op, &me, what, [op](emu::Slot* s) {
    unsigned bits = 0;
    for (int l = 0; l < 32; ++l) bits |= unsigned(emu::slot<EmuVote>(s, l).p) << l;
    const unsigned r = op == emu::BALLOT ? bits : op == emu::ANY ? unsigned(bits != 0) : unsigned(bits == 0xffffffffu);
    for (int l = 0; l < 32; ++l) emu::slot<EmuVote>(s, l).out = r;
  });
  return me.out;
}
inline unsigned __ballot_sync(unsigned mask, int p) { return emu_vote(mask, p != 0, emu::BALLOT, "__ballot_sync"); }
inline int __any_sync(unsigned mask, int p) { return int(emu_vote(mask, p != 0, emu::ANY, "__any_sync")); }
inline int __all_sync(unsigned mask, int p) { return int(emu_vote(mask, p != 0, emu::ALL, "__all_sync")); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu_vote(mask, true, emu::SYNCWARP, "__syncwarp"); }

// ---- the inline-PTX wrappers of render/cuda-ptx.ts and render/cuda-bwd.ts, by their PTX semantics ----
inline unsigned attnc_smem_addr(const void* p) { return emu::smem_addr(p); }
namespace emu {
inline void issue_copy(unsigned dst, const void* src, unsigned bytes, bool valid) {
  unsigned char* d = shared_at(dst, bytes);  // a destination out of bounds fails at issue
  if (copies_early) {  // landed at issue: the earliest point, where a copy overwrites what a pending product still reads
    if (valid) memcpy(d, src, bytes); else memset(d, 0, bytes);
    return;
  }
  Fiber::Copy c{dst, bytes, valid, {}, cur->committed};
  if (valid) memcpy(c.data, src, bytes);
  cur->copies.push_back(c);
}
// Lands this thread's pending copies of groups before `group` (all of them for INT32_MAX), in issue order.
inline void land_copies(int group) {
  auto& cs = cur->copies;
  size_t keep = 0;
  for (size_t i = 0; i < cs.size(); ++i) {
    if (cs[i].group < group) {
      unsigned char* d = shared_at(cs[i].dst, cs[i].bytes);
      if (cs[i].valid) memcpy(d, cs[i].data, cs[i].bytes); else memset(d, 0, cs[i].bytes);
    } else {
      cs[keep++] = cs[i];
    }
  }
  cs.resize(keep);
}
}  // namespace emu
inline void attnc_cp_async16(unsigned dst, const void* src, bool valid) { emu::issue_copy(dst, src, 16, valid); }
template <int DST_OFF, int SRC_OFF> inline void attnc_cp_async16_at(unsigned dst, const void* src) {
  emu::issue_copy(dst + DST_OFF, static_cast<const char*>(src) + SRC_OFF, 16, true);
}
inline void attnc_cp_async4(unsigned dst, const void* src, bool valid) { emu::issue_copy(dst, src, 4, valid); }
inline void attnc_cp_commit() { ++emu::cur->committed; }
// wait_group N: every committed group but the newest N has landed (copies not yet committed are not waited for).
template <int N> inline void attnc_cp_wait() { emu::land_copies(emu::cur->committed - N); }
inline void attnc_cp_wait_all() { emu::land_copies(INT32_MAX); }
inline float attnc_ex2(float x) {  // ex2.approx.ftz: subnormal results flush to zero
  const float y = std::exp2(x);
  return std::fpclassify(y) == FP_SUBNORMAL ? 0.f : y;
}
inline unsigned attnc_pack(float lo, float hi) { return unsigned(emu::to_elem(lo)) | (unsigned(emu::to_elem(hi)) << 16); }
inline void attnc_unpack(unsigned v, float& lo, float& hi) { lo = emu::lo_of(v); hi = emu::hi_of(v); }
// max.{bf16,f16}x2: each half the larger of the two; a NaN half gives way to the other.
inline unsigned attnc_max_x2(unsigned x, unsigned y) {
  auto half = [](uint16_t a, uint16_t b) -> uint16_t {
    const float fa = emu::elem(a), fb = emu::elem(b);
    if (std::isnan(fa)) return b;
    if (std::isnan(fb)) return a;
    return fb > fa || (fb == fa && !std::signbit(fb)) ? b : a;
  };
  return unsigned(half(uint16_t(x & 0xffff), uint16_t(y & 0xffff))) | (unsigned(half(uint16_t(x >> 16), uint16_t(y >> 16))) << 16);
}

struct EmuLdsm { unsigned addr; unsigned out[4]; };
inline void emu_ldsm(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr, bool trans) {
  EmuLdsm me{addr, {0, 0, 0, 0}};
  emu::collective(emu::warps, 32, trans ? emu::LDSM_T : emu::LDSM, &me, "ldmatrix", [trans](emu::Slot* s) {
    // Matrix j's row i starts at the address of thread 8j + i; 8 b16 per row.
    auto at = [&](int j, int row, int col) {
      uint16_t h;
      memcpy(&h, emu::shared_at(emu::slot<EmuLdsm>(s, 8 * j + row).addr + 2 * col, 2), 2);
      return unsigned(h);
    };
    for (int l = 0; l < 32; ++l)
      for (int j = 0; j < 4; ++j) {
        const int g = l >> 2, t = l & 3;
        emu::slot<EmuLdsm>(s, l).out[j] = trans ? at(j, 2 * t, g) | (at(j, 2 * t + 1, g) << 16) : at(j, g, 2 * t) | (at(j, g, 2 * t + 1) << 16);
      }
  });
  r0 = me.out[0]; r1 = me.out[1]; r2 = me.out[2]; r3 = me.out[3];
}
inline void attnc_ldsm_x4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr) { emu_ldsm(r0, r1, r2, r3, addr, false); }
inline void attnc_ldsm_x4_t(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr) { emu_ldsm(r0, r1, r2, r3, addr, true); }

struct EmuMma { float* c; const unsigned* a; unsigned b0, b1; };
inline void attnc_mma(float* c, const unsigned* a, unsigned b0, unsigned b1) {
  EmuMma me{c, a, b0, b1};
  emu::collective(emu::warps, 32, emu::MMA, &me, "mma.sync", [](emu::Slot* s) {
    float A[16][16], Bm[16][8];
    for (int l = 0; l < 32; ++l) {
      const EmuMma& x = emu::slot<EmuMma>(s, l);
      emu::a_fragment_elems(x.a, l, A, 0);
      const int g = l >> 2, t = l & 3;  // b0: k 2t, 2t+1 of column g; b1: k 2t+8, 2t+9
      Bm[2 * t][g] = emu::lo_of(x.b0); Bm[2 * t + 1][g] = emu::hi_of(x.b0);
      Bm[2 * t + 8][g] = emu::lo_of(x.b1); Bm[2 * t + 9][g] = emu::hi_of(x.b1);
    }
    for (int l = 0; l < 32; ++l) {
      float* c = emu::slot<EmuMma>(s, l).c;
      const int g = l >> 2, t = l & 3;
      for (int r = 0; r < 4; ++r) {
        const int row = g + 8 * (r >> 1), col = 2 * t + (r & 1);
        float acc = c[r];
        for (int k = 0; k < 16; ++k) acc = std::fma(A[row][k], Bm[k][col], acc);
        c[r] = acc;
      }
    }
  });
}

// A wait_group N of async work: every pending entry of a group older than the newest N is done (`land`), in issue order.
template <class T, class F> void retire_groups(std::vector<T>& pending, int committed, int n, F&& land) {
  for (size_t i = 0; i < pending.size();) {
    if (pending[i].group < committed - n) {
      land(pending[i]);
      pending.erase(pending.begin() + i);
    } else {
      ++i;
    }
  }
}

// red.global.add: one thread runs at a time, so a plain add is atomic here.
inline void attnc_red_add2(float* p, float a, float b) { p[0] += a; p[1] += b; }

// cp.reduce.async.bulk .add.f32 from shared to global memory: done (its shared memory read) at the wait that retires it.
inline void attnc_bulk_red_add(float* dst, unsigned src, unsigned bytes) {
  if (bytes % 16 || src % 16 || reinterpret_cast<uintptr_t>(dst) % 16) emu::fail("cp.reduce.async.bulk: size and addresses must be multiples of 16 (%u bytes at shared %u)", bytes, src);
  emu::shared_at(src, bytes);  // in bounds at issue
  emu::cur->bulk.push_back({dst, src, bytes, emu::cur->bulk_committed});
}
inline void attnc_bulk_commit() { ++emu::cur->bulk_committed; }
template <int N> inline void attnc_bulk_wait_read() {
  retire_groups(emu::cur->bulk, emu::cur->bulk_committed, N, [](const emu::Fiber::Bulk& b) {
    const float* from = reinterpret_cast<const float*>(emu::shared_at(b.src, b.bytes));
    for (unsigned x = 0; x < b.bytes / 4; ++x) b.dst[x] += from[x];  // one thread runs at a time
  });
}
template <int N> inline void attnc_bulk_wait() { attnc_bulk_wait_read<N>(); }

inline void attnc_wg_fence() {}
inline void attnc_wg_commit() { ++emu::cur->wg_committed; }
// wgmma.wait_group N: every committed group but the newest N has landed.
template <int N> inline void attnc_wg_wait() {
  // Every product of a group this wait retires is complete: its shared-memory operands must read as they did at issue
  // (checked once per wgmma, by the first thread of the warpgroup to get here), including earlier products of an
  // accumulator whose latest one stays pending.
  for (auto& w : emu::cur->wg_pending)
    for (auto& o : w.ops)
      if (o->group < emu::cur->wg_committed - N) emu::check_operands(*o);
  retire_groups(emu::cur->wg_pending, emu::cur->wg_committed, N, [](const emu::Fiber::WgResult& w) {
    std::memcpy(w.d, w.r, sizeof(float) * w.count);
  });
}
inline void attnc_fence_async_smem() {}
template <int R> inline void attnc_setmaxnreg_dec() {}
template <int R> inline void attnc_setmaxnreg_inc() {}
inline void attnc_bar_sync(int id, int n) { emu::bar_arrive_impl(id, n, true); }
inline void attnc_bar_arrive(int id, int n) { emu::bar_arrive_impl(id, n, false); }

// An mbarrier's 8 bytes hold its expected count, pending count and phase (the kernels never read them directly).
struct EmuMbar { uint16_t expected, pending; uint32_t phase; };
inline EmuMbar* emu_mbar(unsigned bar) { return reinterpret_cast<EmuMbar*>(emu::shared_at(bar, 8)); }
inline void attnc_mbar_init(unsigned bar, unsigned count) { *emu_mbar(bar) = {uint16_t(count), uint16_t(count), 0}; }
inline void attnc_mbar_arrive(unsigned bar) {
  EmuMbar* m = emu_mbar(bar);
  if (m->pending == 0 || m->expected == 0 || m->pending > m->expected) emu::fail("mbarrier at 0x%x: arrival on an uninitialized barrier", bar);
  ++emu::progress;
  if (--m->pending == 0) { m->pending = m->expected; ++m->phase; }
}
// cp.async.mbarrier.arrive (without .noinc) adds one pending arrival and makes it when this thread's copies so far
// land: they land here, so the two cancel.
inline void attnc_mbar_track_cp(unsigned bar) {
  (void)emu_mbar(bar);
  emu::land_copies(INT32_MAX);
}
inline void attnc_mbar_wait(unsigned bar, unsigned parity) {  // try_wait.parity: done once the phase of that parity completed
  while ((emu_mbar(bar)->phase & 1) == (parity & 1)) emu::yield("an mbarrier");
}

template <int N> void attnc_wgmma_ss(float* d, unsigned long long a, unsigned long long b, int accumulate) { emu::wgmma_ss<N>(d, a, b, accumulate); }
inline void attnc_wgmma_ss_t(float* d, unsigned long long a, unsigned long long b, int accumulate) { emu::wgmma_ss<64, true>(d, a, b, accumulate); }
inline void attnc_wgmma_rs(float* d, const unsigned* a, unsigned long long b) { emu::wgmma_rs(d, a, b, 64, false); }
inline void attnc_wgmma_rs_ones(float* d, const unsigned* a, unsigned long long ones) { emu::wgmma_rs(d, a, ones, 8, true); }

namespace emu {
// 1 (and error_text) if a launch wrote into the guard after an allocation.
inline int check_guards() {
  for (const Allocation& a : allocations)
    for (size_t i = 0; i < GUARD; ++i)
      if (a.p[a.bytes + i] != 0xff) {
        snprintf(error_text, sizeof error_text, "a kernel wrote past the end of a %zu-byte buffer (byte %zu after it)", a.bytes, i);
        memset(a.p + a.bytes, 0xff, GUARD);
        return 1;
      }
  return 0;
}

template <class... A> int launch(void (*kernel)(A...), void** args, int nargs, Dim3 grid, Dim3 block, unsigned smem_bytes) {
  failed = false;
  error_text[0] = 0;
  if (nargs != int(sizeof...(A))) { snprintf(error_text, sizeof error_text, "%d arguments for a kernel of %d parameters", nargs, int(sizeof...(A))); return 1; }
  const int threads = int(block.x * block.y * block.z);
  if (threads % 32) { snprintf(error_text, sizeof error_text, "block of %d threads: whole warps only", threads); return 1; }
  if (smem_bytes + DYN_OFFSET + 1024 > SHARED_BYTES) { snprintf(error_text, sizeof error_text, "%u bytes of dynamic shared memory: the emulator has %zu", smem_bytes, SHARED_BYTES - DYN_OFFSET - 1024); return 1; }
  if (fibers.size() < size_t(threads)) fibers.resize(threads);
  for (auto& f : fibers)
    if (!f.stack) {
      void* p = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) { snprintf(error_text, sizeof error_text, "no memory for a thread's stack"); return 1; }
      f.stack = static_cast<char*>(p);
    }
  static void (*k)(A...);
  static void** a;
  k = kernel;
  a = args;
  block_body = [] { call_with(k, a, std::index_sequence_for<A...>{}); };
  dyn_base = arena + DYN_OFFSET;
  dyn_bytes = smem_bytes;
  blockDim = block;
  gridDim = grid;
  warps.assign(threads / 32, Group{});
  warpgroups.assign((threads + 127) / 128, Group{});
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = {bx, by, bz};
        memset(__start_attnc_emu_shared, 0xff, size_t(__stop_attnc_emu_shared - __start_attnc_emu_shared));
        for (auto& b : barriers) b = Barrier{};
        for (int i = 0; i < threads; ++i) {
          Fiber& f = fibers[i];
          f.linear = i;
          f.tid = {unsigned(i) % block.x, (unsigned(i) / block.x) % block.y, unsigned(i) / (block.x * block.y)};
          f.done = false;
          f.waiting = nullptr;
          f.copies.clear();
          f.committed = 0;
          f.wg_committed = 0;
          f.wg_pending.clear();
          f.bulk.clear();
          f.bulk_committed = 0;
          start_context(f.ctx, f.stack, STACK_BYTES, fiber_entry);
        }
        // One slice of thread i (until it waits or ends); false if the launch failed.
        auto run = [&](int i) {
          cur = &fibers[i];
          switch_to(scheduler, cur->ctx);
          if (!failed) return true;
          const size_t n = strlen(error_text);
          snprintf(error_text + n, sizeof error_text - n, " (block %u,%u,%u, thread %d)", bx, by, bz, i);
          return false;
        };
        const int units = (threads + 127) / 128;
        for (int live = threads; live > 0;) {
          const unsigned long long before = progress;
          if (schedule_mode == 0) {
            for (int i = 0; i < threads; ++i)
              if (!fibers[i].done && !run(i)) return 1;
          } else {
            for (int u0 = 0; u0 < units; ++u0) {  // warpgroup u runs until none of its threads gets further
              const int u = schedule_mode == 2 ? units - 1 - u0 : u0;
              for (unsigned long long p0 = ~0ull; p0 != progress;) {
                p0 = progress;
                for (int i = 128 * u; i < threads && i < 128 * (u + 1); ++i)
                  if (!fibers[i].done && !run(i)) return 1;
              }
            }
          }
          live = 0;
          for (int i = 0; i < threads; ++i) live += !fibers[i].done;
          if (live && progress == before) {
            int n = snprintf(error_text, sizeof error_text, "deadlock in block %u,%u,%u:", bx, by, bz);
            for (int i = 0; i < threads && n < int(sizeof error_text) - 64; i += 32)
              n += snprintf(error_text + n, sizeof error_text - n, " warp %d waits on %s;", i / 32, fibers[i].done ? "nothing (done)" : fibers[i].waiting ? fibers[i].waiting : "?");
            return 1;
          }
        }
        for (size_t i = DYN_OFFSET + smem_bytes; i < DYN_OFFSET + smem_bytes + 1024 && i < SHARED_BYTES; ++i)
          if (arena[i] != 0xff) {
            snprintf(error_text, sizeof error_text, "block %u,%u,%u wrote shared memory %zu bytes past its %u bytes of dynamic shared memory", bx, by, bz, i - DYN_OFFSET - smem_bytes, smem_bytes);
            return 1;
          }
      }
  return check_guards();
}
}  // namespace emu

// The kernel's dynamic shared memory (its `extern __shared__` array, rewritten by cuda-emu.ts to call this).
inline unsigned char* attnc_emu_dynamic_smem() { return emu::dyn_base; }

extern "C" {
const char* attnc_emu_error() { return emu::error_text; }
void attnc_emu_schedule(int mode, int copies_early) { emu::schedule_mode = mode; emu::copies_early = copies_early != 0; }
uint64_t attnc_emu_alloc(size_t bytes) {
  unsigned char* p = static_cast<unsigned char*>(aligned_alloc(256, (bytes + 255) / 256 * 256 + emu::GUARD));
  if (!p) return 0;
  memset(p + bytes, 0xff, emu::GUARD);
  emu::allocations.push_back({p, bytes});
  return uint64_t(uintptr_t(p));
}
void attnc_emu_free(uint64_t p) {
  auto& all = emu::allocations;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].p == reinterpret_cast<unsigned char*>(uintptr_t(p))) { all[i] = all.back(); all.pop_back(); break; }
  free(reinterpret_cast<void*>(uintptr_t(p)));
}
void attnc_emu_write(uint64_t dst, const void* src, size_t n) { memcpy(reinterpret_cast<void*>(uintptr_t(dst)), src, n); }
void attnc_emu_fill(uint64_t dst, int byte, size_t n) { memset(reinterpret_cast<void*>(uintptr_t(dst)), byte, n); }
void attnc_emu_read(void* dst, uint64_t src, size_t n) { memcpy(dst, reinterpret_cast<const void*>(uintptr_t(src)), n); }
}
