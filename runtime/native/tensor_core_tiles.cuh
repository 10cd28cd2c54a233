// FP8 weights multiplied on tensor cores (W8A16): a block computes a tile of 128 weight rows against up
// to kTileM activation rows. The weight's E4M3 bytes and the activations travel to shared memory by
// cp.async, stages of 128 columns with two in flight; each stage's bytes become their exact bf16 values
// once, in shared memory (Fp8Rows::exact_bf16: E4M3 ⊂ bf16), and WMMA 16×16×16 fragments multiply
// them with the bf16 activations in float32. The block scale is applied to each warp's float32 sums of
// a stage (a warp's 16 rows and a stage's 128 columns lie in one 128×128 block), as DeepSeek's FP8 GEMMs
// promote per block: the product is that of the FP8 weights themselves, not of bf16 roundings of them.
// A weight byte is read once per tile and converted once for all the tile's rows: the CUDA-core row
// kernels of moe_kernels.cuh convert it once per pass of at most eight rows, and dequantise-then-cuBLAS
// moves three bytes per weight.
//
// The tile product is written once over where its activation rows come from (Rows: consecutive rows of
// a projection's input, or one expert's picks gathered by sorted position) and is used by three kernels:
// a projection (split over k when its tiles alone would leave SMs idle; the last block of a tile to
// finish adds the splits' float32 sums in split order, so results do not depend on timing), and an
// expert's gate/up and down over the picks of its run.
#pragma once

#include "moe_kernels.cuh"
#include "weight_formats.cuh"

#include <cuda_bf16.h>
#include <cuda_pipeline_primitives.h>
#include <mma.h>
#include <stdint.h>

namespace deepseek_native::tiles {

constexpr int kTileN = 128;               // weight rows of a block, 16 per warp
constexpr int kTileK = 128;               // columns of a stage: one FP8 scale block
constexpr int kStages = 3;                // stages in shared memory, kStages − 1 in flight
constexpr int kWarps = kTileN / 16;
constexpr int kThreads = kWarps * 32;
constexpr int kLead = kTileK + 8;         // bf16 row stride in shared memory (272 bytes: staggered banks, 32-byte aligned fragments)
constexpr int kChunk = 16;                // bytes a cp.async moves

constexpr int round_up(int value, int to) { return (value + to - 1) / to * to; }

// Byte offsets in the block's dynamic shared memory. The float results of the epilogue reuse the stages.
template <int kTileM>
struct Layout {
  static_assert(kTileM % 16 == 0, "tiles are whole 16-row fragments");
  static constexpr int kWeightStage = kTileN * kTileK;      // E4M3 bytes
  static constexpr int kInputStage = kTileM * kLead * 2;    // bf16
  static constexpr int kInputs = kStages * kWeightStage;
  static constexpr int kPipeline = kInputs + kStages * kInputStage;
  static constexpr int kResults = kWarps * kTileM * 16 * 4;  // float [warps][kTileM][16]
  static constexpr int kDequantized = round_up(kPipeline > kResults ? kPipeline : kResults, 128);
  static constexpr int kBytes = kDequantized + kTileN * kLead * 2;
};

// A projection's input: rows [0, m) of x [m, k]; tile row i is row i and its result goes to row i.
struct DenseRows {
  const __nv_bfloat16* x;
  int m;
  int k;
  __device__ __forceinline__ const __nv_bfloat16* input(int i) const { return i < m ? x + static_cast<int64_t>(i) * k : nullptr; }
  __device__ __forceinline__ int64_t output(int i) const { return i < m ? i : -1; }
};

// One expert's run of sorted picks [first, end): tile row i is pick sorted_picks[first + i], whose input
// is row pick / divisor of source (divisor top_k: the token's hidden state; 1: the pick's own row) and
// whose result goes to row pick.
struct PickRows {
  const __nv_bfloat16* source;
  int k;
  const int64_t* sorted_picks;
  int first, end, divisor;
  __device__ __forceinline__ const __nv_bfloat16* input(int i) const {
    return first + i < end ? source + sorted_picks[first + i] / divisor * k : nullptr;
  }
  __device__ __forceinline__ int64_t output(int i) const { return first + i < end ? sorted_picks[first + i] : -1; }
};

template <int kTileM>
using Accumulators = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>[kTileM / 16];

// Where this thread's cp.async chunks of every stage come from: the same weight rows and input rows at
// each stage, k0 further on. Found once per tile product (a pick's row is looked up once, not per stage).
template <int kTileM>
struct Sources {
  static constexpr int kWeightChunks = kTileN * kTileK / kChunk / kThreads;
  static constexpr int kInputPerRow = kTileK * 2 / kChunk;
  static constexpr int kInputChunks = (kTileM * kInputPerRow + kThreads - 1) / kThreads;
  static_assert(kTileN * kTileK / kChunk % kThreads == 0, "whole weight chunks per thread");
  const uint8_t* weight[kWeightChunks];       // nullptr: a row past the weight (zeros)
  const __nv_bfloat16* input[kInputChunks];   // nullptr: a row past the input, or no chunk (zeros)
  const void* unread;                          // a global address for the chunks that are zero-filled (never read)

  template <typename Rows>
  __device__ __forceinline__ Sources(const Fp8Rows& w, int64_t expert, int64_t n0, const Rows& rows, int m0) : unread(w.bytes) {
#pragma unroll
    for (int j = 0; j < kWeightChunks; j++) {
      const int c = threadIdx.x + j * kThreads;
      const int64_t row = n0 + c / (kTileK / kChunk);
      weight[j] = row < w.rows ? w.bytes + (expert * w.rows + row) * w.k + c % (kTileK / kChunk) * kChunk : nullptr;
    }
#pragma unroll
    for (int j = 0; j < kInputChunks; j++) {
      const int c = threadIdx.x + j * kThreads;
      const __nv_bfloat16* row = c < kTileM * kInputPerRow ? rows.input(m0 + c / kInputPerRow) : nullptr;
      input[j] = row != nullptr ? row + c % kInputPerRow * (kChunk / 2) : nullptr;
    }
  }
};

// Stage `stage` ← columns [k0, k0 + kTileK) of the weight rows and the input rows; columns past k are
// zeros (k is a multiple of 16, so a chunk is whole or past the end).
template <int kTileM>
__device__ __forceinline__ void load_stage(unsigned char* shared, const Sources<kTileM>& from, int k, int k0, int stage) {
  using L = Layout<kTileM>;
  using S = Sources<kTileM>;
  uint8_t* weight = shared + stage * L::kWeightStage;
#pragma unroll
  for (int j = 0; j < S::kWeightChunks; j++) {
    const int c = threadIdx.x + j * kThreads;
    const int column = c % (kTileK / kChunk) * kChunk;
    const bool real = from.weight[j] != nullptr && k0 + column < k;
    __pipeline_memcpy_async(weight + c / (kTileK / kChunk) * kTileK + column, real ? static_cast<const void*>(from.weight[j] + k0) : from.unread, kChunk,
                            real ? 0 : kChunk);
  }
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared + L::kInputs + stage * L::kInputStage);
#pragma unroll
  for (int j = 0; j < S::kInputChunks; j++) {
    const int c = threadIdx.x + j * kThreads;
    if (c >= kTileM * S::kInputPerRow) break;
    const int column = c % S::kInputPerRow * (kChunk / 2);
    const bool real = from.input[j] != nullptr && k0 + column < k;
    __pipeline_memcpy_async(input + c / S::kInputPerRow * kLead + column, real ? static_cast<const void*>(from.input[j] + k0) : from.unread,
                            kChunk, real ? 0 : kChunk);
  }
}

// Stage `stage`'s E4M3 bytes → their exact bf16 values [kTileN][kLead] at kDequantized (the scales come later).
template <int kTileM>
__device__ __forceinline__ void convert_stage(unsigned char* shared, int stage) {
  using L = Layout<kTileM>;
  const uint8_t* weight = shared + stage * L::kWeightStage;
  auto* converted = reinterpret_cast<__nv_bfloat16*>(shared + L::kDequantized);
  for (int c = threadIdx.x; c < kTileN * kTileK / kChunk; c += kThreads) {
    const int r = c / (kTileK / kChunk), column = c % (kTileK / kChunk) * kChunk;
    const uint4 raw = *reinterpret_cast<const uint4*>(weight + r * kTileK + column);
    alignas(16) __nv_bfloat162 values[kChunk / 2];
    Fp8Rows::exact_bf16(raw.x, values[0], values[1]);
    Fp8Rows::exact_bf16(raw.y, values[2], values[3]);
    Fp8Rows::exact_bf16(raw.z, values[4], values[5]);
    Fp8Rows::exact_bf16(raw.w, values[6], values[7]);
    auto* target = reinterpret_cast<uint4*>(converted + r * kLead + column);
    target[0] = reinterpret_cast<const uint4*>(values)[0];
    target[1] = reinterpret_cast<const uint4*>(values)[1];
  }
}

// acc[mi] += rows [m0 + 16·mi, +16) of the input · weight rows [n0 + 16·warp, +16) over k tiles
// [k_begin, k_end), each stage's sums times its block scale. A warp's 16 rows share a scale (the caller
// checks that the split between a stack's two grids falls on a multiple of 16). Every thread of the block
// calls it (it synchronises the block).
template <int kTileM, typename Rows>
__device__ __forceinline__ void multiply_tile(unsigned char* shared, const Fp8Rows& w, int64_t expert, int64_t n0, const Rows& rows, int m0, int k_begin,
                                              int k_end, Accumulators<kTileM>& acc) {
  using namespace nvcuda;
  using L = Layout<kTileM>;
  const int warp = threadIdx.x / 32;
  const int64_t warp_row = n0 + warp * 16;
  const int tiles = k_end - k_begin;
  const auto* converted = reinterpret_cast<const __nv_bfloat16*>(shared + L::kDequantized);
  const Sources<kTileM> from(w, expert, n0, rows, m0);
#pragma unroll
  for (int t = 0; t < kStages - 1; t++) {
    if (t < tiles) load_stage<kTileM>(shared, from, w.k, (k_begin + t) * kTileK, t);
    __pipeline_commit();  // an empty group where there is no tile keeps the count the waits rely on
  }
  for (int t = 0; t < tiles; t++) {
    const int stage = t % kStages;
    const int k0 = (k_begin + t) * kTileK;
    const float scale = warp_row < w.rows ? w.scale(expert, warp_row, k0) : 0.f;
    __pipeline_wait_prior(kStages - 2);  // this thread's copies of tile t have landed
    __syncthreads();                     // everyone's have, and everyone is done with tile t − 1
    if (t + kStages - 1 < tiles) load_stage<kTileM>(shared, from, w.k, (k_begin + t + kStages - 1) * kTileK, (t + kStages - 1) % kStages);
    __pipeline_commit();
    convert_stage<kTileM>(shared, stage);
    __syncthreads();
    const auto* input = reinterpret_cast<const __nv_bfloat16*>(shared + L::kInputs + stage * L::kInputStage);
    Accumulators<kTileM> sums;
#pragma unroll
    for (int mi = 0; mi < kTileM / 16; mi++) wmma::fill_fragment(sums[mi], 0.f);
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;  // (k, n) at n·kLead + k: the weight's rows
      wmma::load_matrix_sync(b, converted + warp * 16 * kLead + kk, kLead);
#pragma unroll
      for (int mi = 0; mi < kTileM / 16; mi++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::load_matrix_sync(a, input + mi * 16 * kLead + kk, kLead);
        wmma::mma_sync(sums[mi], a, b, sums[mi]);
      }
    }
#pragma unroll
    for (int mi = 0; mi < kTileM / 16; mi++) {
#pragma unroll
      for (int e = 0; e < sums[mi].num_elements; e++) acc[mi].x[e] += scale * sums[mi].x[e];
    }
  }
  __syncthreads();  // the stages are free for the results
}

// Hands each of the warp's results (tile row i, weight row n) to `write`, then frees the stages again.
template <int kTileM, typename Write>
__device__ __forceinline__ void each_result(unsigned char* shared, Accumulators<kTileM>& acc, int64_t n0, Write write) {
  using namespace nvcuda;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* results = reinterpret_cast<float*>(shared) + warp * kTileM * 16;
#pragma unroll
  for (int mi = 0; mi < kTileM / 16; mi++) wmma::store_matrix_sync(results + mi * 16 * 16, acc[mi], 16, wmma::mem_row_major);
  __syncwarp();
  for (int i = lane; i < kTileM * 16; i += 32) write(i / 16, n0 + warp * 16 + i % 16, results[i]);
  __syncthreads();
}

template <int kTileM>
__device__ __forceinline__ void clear(Accumulators<kTileM>& acc) {
#pragma unroll
  for (int mi = 0; mi < kTileM / 16; mi++) nvcuda::wmma::fill_fragment(acc[mi], 0.f);
}

// grid (ceil(rows / kTileN), ceil(m / kTileM), splits): out = x · Wᵀ. With one split the block writes
// bf16 `out`. With several, split z writes its float32 sums to partial[z] ([m, rows]) and counts itself
// in counters[tile]; the tile's last block adds the splits in split order, writes `out` and resets the
// counter for the next call (the counters start at zero and end each call at zero, graph replays included).
template <int kTileM>
__global__ void __launch_bounds__(kThreads) linear(const __nv_bfloat16* __restrict__ x, int m, Fp8Rows w, int k_tiles_per_split,
                                                   float* __restrict__ partial, unsigned* __restrict__ counters, __nv_bfloat16* __restrict__ out) {
  extern __shared__ __align__(128) unsigned char shared[];
  __shared__ bool last;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  const int m0 = blockIdx.y * kTileM;
  const int k_tiles = (w.k + kTileK - 1) / kTileK;
  const int k_begin = blockIdx.z * k_tiles_per_split, k_end = min(k_tiles, k_begin + k_tiles_per_split);
  Accumulators<kTileM> acc;
  clear<kTileM>(acc);
  multiply_tile<kTileM>(shared, w, 0, n0, DenseRows{x, m, w.k}, m0, k_begin, k_end, acc);
  const int splits = gridDim.z;
  const int64_t count = static_cast<int64_t>(m) * w.rows;
  each_result<kTileM>(shared, acc, n0, [&](int i, int64_t n, float value) {
    if (m0 + i >= m || n >= w.rows) return;
    const int64_t at = static_cast<int64_t>(m0 + i) * w.rows + n;
    if (splits > 1) partial[blockIdx.z * count + at] = value;
    else out[at] = __float2bfloat16(value);
  });
  if (splits == 1) return;
  __threadfence();  // this block's sums are visible before it is counted
  __syncthreads();
  unsigned* counter = counters + blockIdx.y * gridDim.x + blockIdx.x;
  if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == static_cast<unsigned>(splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  // Each thread adds its kPerThread outputs split by split: the loads of one split are independent, so
  // they are in flight together rather than one latency per split and output.
  constexpr int kPerThread = kTileM * kTileN / kThreads;
  float sums[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; j++) sums[j] = 0.f;
  for (int z = 0; z < splits; z++) {
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
      const int i = threadIdx.x + j * kThreads;
      const int row = m0 + i / kTileN;
      const int64_t n = n0 + i % kTileN;
      if (row < m && n < w.rows) sums[j] += __ldcg(partial + z * count + static_cast<int64_t>(row) * w.rows + n);
    }
  }
#pragma unroll
  for (int j = 0; j < kPerThread; j++) {
    const int i = threadIdx.x + j * kThreads;
    const int row = m0 + i / kTileN;
    const int64_t n = n0 + i % kTileN;
    if (row < m && n < w.rows) out[static_cast<int64_t>(row) * w.rows + n] = __float2bfloat16(sums[j]);
  }
  if (threadIdx.x == 0) *counter = 0;
}

// grid (ceil(rows / kTileN), min(picks, held)) over the picks sorted by slot (moe::run_of_block): for
// every pick of the block's run, product[pick] = bf16(input row of the pick · the expert's rows ᵀ),
// kTileM picks at a time. Gate/up: source = hidden, divisor = top_k, product [picks, 2·inter]; down:
// source = activated, divisor = 1, product [picks, hidden].
template <int kTileM>
__global__ void __launch_bounds__(kThreads) expert_rows(const __nv_bfloat16* __restrict__ source, int divisor, const int64_t* __restrict__ sorted_slots,
                                                        const int64_t* __restrict__ sorted_picks, int picks, int64_t held, Fp8Rows w,
                                                        __nv_bfloat16* __restrict__ product) {
  extern __shared__ __align__(128) unsigned char shared[];
  const moe::Run run = moe::run_of_block(sorted_slots, picks, held);
  if (run.first >= run.end) return;  // the same for the whole block
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  for (int start = run.first; start < run.end; start += kTileM) {
    const PickRows rows{source, w.k, sorted_picks, start, run.end, divisor};
    Accumulators<kTileM> acc;
    clear<kTileM>(acc);
    multiply_tile<kTileM>(shared, w, run.slot, n0, rows, 0, 0, (w.k + kTileK - 1) / kTileK, acc);
    each_result<kTileM>(shared, acc, n0, [&](int i, int64_t n, float value) {
      const int64_t pick = rows.output(i);
      if (pick >= 0 && n < w.rows) product[pick * w.rows + n] = __float2bfloat16(value);
    });
  }
}

// grid (ceil(inter / threads), picks): activated[p, n] = silu(gate)·up from the pick's gate/up products
// (already bf16), rounded as the bf16 path rounds. Picks computed elsewhere are skipped.
__global__ void swiglu(const __nv_bfloat16* __restrict__ gate_up, const int64_t* __restrict__ slots, int64_t held, int inter,
                       __nv_bfloat16* __restrict__ activated) {
  const int64_t pick = blockIdx.y;
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= inter || !moe::held_slot(slots[pick], held)) return;
  const float g = __bfloat162float(gate_up[pick * 2 * inter + n]);
  const float u = __bfloat162float(gate_up[pick * 2 * inter + inter + n]);
  activated[pick * inter + n] = __float2bfloat16(moe::rounded(g / (1.f + __expf(-g))) * u);
}

}  // namespace deepseek_native::tiles
