// Device code of the helper's quantised routed-expert kernels (quantized_moe.cu holds the ATen entry
// points), written once over a weight format (weight_formats.cuh: int4 groups, FP8 blocks). Every warp
// reads whole weight rows, takes each value once in float32 and multiplies it with every input row it
// serves; sums are float32, rounded to bf16 where the bf16 path rounds its tensors.
#pragma once

#include "weight_formats.cuh"

#include <cuda_bf16.h>
#include <stdint.h>

namespace deepseek_native::moe {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kThreads = kWarp * kWarpsPerBlock;
// Pairs of one expert multiplied per pass over its rows (their inputs staged in shared memory).
constexpr int kPairsPerPass = 8;

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ __forceinline__ float rounded(float value) { return __bfloat162float(__float2bfloat16(value)); }

// The lane's share of Σ_k w[k]·input_j[k] over row `row` of expert `expert` of `weights`, for `count` ≤ kMax
// inputs of weights.k bf16 values each, `input_stride` values apart (shared or global memory, 16-byte
// aligned). Each weight value is read once for all the inputs.
template <int kMax, typename Weights>
__device__ __forceinline__ void row_dots(const Weights& weights, int64_t expert, int64_t row, const __nv_bfloat16* __restrict__ input,
                                         int64_t input_stride, int count, int lane, float (&sums)[kMax]) {
#pragma unroll
  for (int j = 0; j < kMax; j++) sums[j] = 0.f;
  // One input: several rows' loads in flight. Several: their products already overlap the loads, and
  // unrolling them too cost more in registers than it gained (measured on an H200, docs/gpu.md).
  constexpr int kUnroll = kMax == 1 ? 4 : 1;
#pragma unroll kUnroll
  for (int base = lane * kValuesPerLane; base < weights.k; base += kWarp * kValuesPerLane) {
    float w[kValuesPerLane];
    weights.values(expert, row, base, w);
#pragma unroll
    for (int j = 0; j < kMax; j++) {
      if (j < count) {
        const uint4 x = *reinterpret_cast<const uint4*>(input + j * input_stride + base);
        const __nv_bfloat162* xs = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
        for (int p = 0; p < 4; p++) {
          const float2 pair = __bfloat1622float2(xs[p]);
          sums[j] += w[2 * p] * pair.x + w[2 * p + 1] * pair.y;
        }
      }
    }
  }
}

__device__ __forceinline__ bool held_slot(int64_t slot, int64_t held) { return slot >= 0 && slot < held; }

// ---- a block per pick (no more picks than held experts: grouping them would save nothing) ---------

// grid (ceil(inter / warps), picks); one warp per intermediate row n of a pick: the gate row n and
// the up row inter + n, then silu(gate)·up, each rounded to bf16 as the bf16 path's tensors are.
template <typename Weights>
__global__ void gate_up_per_pick(const __nv_bfloat16* __restrict__ hidden, const int64_t* __restrict__ slots, int top_k, int64_t held,
                                 Weights gate_up, int inter, __nv_bfloat16* __restrict__ activated) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);
  const int hidden_size = gate_up.k;
  const int pick = blockIdx.y;
  const int64_t slot = slots[pick];
  if (!held_slot(slot, held)) return;  // computed elsewhere: the down kernel skips it too
  const __nv_bfloat16* x = hidden + static_cast<int64_t>(pick / top_k) * hidden_size;
  for (int i = threadIdx.x * 8; i < hidden_size; i += blockDim.x * 8)
    *reinterpret_cast<uint4*>(input + i) = *reinterpret_cast<const uint4*>(x + i);
  __syncthreads();

  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (n >= inter) return;
  float gate[1], up[1];
  row_dots<1>(gate_up, slot, n, input, 0, 1, lane, gate);
  row_dots<1>(gate_up, slot, inter + n, input, 0, 1, lane, up);
  const float g = rounded(warp_sum(gate[0]));
  const float u = rounded(warp_sum(up[0]));
  if (lane == 0) activated[static_cast<int64_t>(pick) * inter + n] = __float2bfloat16(rounded(g / (1.f + __expf(-g))) * u);
}

// grid (ceil(hidden / warps), tokens); one warp per output column n of a token: Σ over the token's
// picks (in pick order) of weight · down_row_n · activated, each pick's product rounded to bf16 first.
template <typename Weights>
__global__ void down_per_pick(const __nv_bfloat16* __restrict__ activated, const int64_t* __restrict__ slots, const float* __restrict__ weights,
                              int top_k, int64_t held, Weights down, __nv_bfloat16* __restrict__ output) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);  // [top_k, inter]
  const int inter = down.k;
  const int64_t hidden_size = down.rows;
  const int token = blockIdx.y;
  const int64_t first = static_cast<int64_t>(token) * top_k;
  for (int i = threadIdx.x * 8; i < top_k * inter; i += blockDim.x * 8)
    *reinterpret_cast<uint4*>(input + i) = *reinterpret_cast<const uint4*>(activated + first * inter + i);
  __syncthreads();

  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (n >= hidden_size) return;
  float sum = 0.f;
  for (int pick = 0; pick < top_k; pick++) {
    const int64_t slot = slots[first + pick];
    if (!held_slot(slot, held)) continue;
    float product[1];
    row_dots<1>(down, slot, n, input + pick * inter, 0, 1, lane, product);
    sum += weights[first + pick] * rounded(warp_sum(product[0]));
  }
  if (lane == 0) output[static_cast<int64_t>(token) * hidden_size + n] = __float2bfloat16(sum);
}

// ---- several tokens: a block per expert ------------------------------------------------------------
// The picks sorted by slot (`sorted_slots`, with `sorted_picks` their positions in [tokens·k]); a block
// reads one expert's rows once for every pick of its run (kPairsPerPass at a time). With fewer picks
// than held experts, block y is sorted pick y and works only if that pick begins its expert's run;
// otherwise block y is slot y and finds its run by binary search. Either way at most min(picks, held)
// blocks per row range, most of them busy when the batch is large.

__device__ __forceinline__ int lower_bound(const int64_t* __restrict__ sorted, int n, int64_t value) {
  int low = 0, high = n;
  while (low < high) {
    const int mid = (low + high) / 2;
    if (sorted[mid] < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

struct Run {
  int first, end;  // sorted picks [first, end) of one held slot; empty when the block has none
  int64_t slot;
};

__device__ __forceinline__ Run run_of_block(const int64_t* __restrict__ sorted_slots, int picks, int64_t held) {
  __shared__ Run run;
  if (threadIdx.x == 0) {
    const int y = blockIdx.y;
    Run r{0, 0, -1};
    if (picks <= held) {
      const int64_t slot = sorted_slots[y];
      if (held_slot(slot, held) && (y == 0 || sorted_slots[y - 1] != slot)) {
        int end = y + 1;
        while (end < picks && sorted_slots[end] == slot) end++;
        r = Run{y, end, slot};
      }
    } else {
      r = Run{lower_bound(sorted_slots, picks, y), lower_bound(sorted_slots, picks, y + 1), y};
    }
    run = r;
  }
  __syncthreads();
  return run;
}

// Copies the `count` rows of `source` named by `sorted_picks[start…]` (row = pick / divisor) into shared memory.
__device__ __forceinline__ void stage_rows(__nv_bfloat16* __restrict__ staged, const __nv_bfloat16* __restrict__ source, const int64_t* __restrict__ sorted_picks,
                                           int start, int count, int divisor, int width) {
  __syncthreads();  // the previous pass is done with them
  for (int i = threadIdx.x * 8; i < count * width; i += blockDim.x * 8) {
    const int j = i / width;
    const int64_t row = sorted_picks[start + j] / divisor;
    *reinterpret_cast<uint4*>(staged + i) = *reinterpret_cast<const uint4*>(source + row * width + (i - j * width));
  }
  __syncthreads();
}

// grid (ceil(inter / warps), min(picks, held)): gate/up rows and SwiGLU for every pick of a run.
template <typename Weights>
__global__ void gate_up_per_expert(const __nv_bfloat16* __restrict__ hidden, const int64_t* __restrict__ sorted_slots, const int64_t* __restrict__ sorted_picks,
                                   int picks, int top_k, int64_t held, Weights gate_up, int inter, __nv_bfloat16* __restrict__ activated) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);  // [kPairsPerPass, hidden]
  const int hidden_size = gate_up.k;
  const Run run = run_of_block(sorted_slots, picks, held);
  if (run.first >= run.end) return;  // the same for the whole block
  const int64_t slot = run.slot;
  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  for (int start = run.first; start < run.end; start += kPairsPerPass) {
    const int count = min(kPairsPerPass, run.end - start);
    stage_rows(input, hidden, sorted_picks, start, count, top_k, hidden_size);
    if (n >= inter) continue;  // no barrier below: a warp past the rows only joins the staging
    float gate[kPairsPerPass], up[kPairsPerPass];
    row_dots<kPairsPerPass>(gate_up, slot, n, input, hidden_size, count, lane, gate);
    row_dots<kPairsPerPass>(gate_up, slot, inter + n, input, hidden_size, count, lane, up);
#pragma unroll
    for (int j = 0; j < kPairsPerPass; j++) {
      if (j < count) {
        const float g = rounded(warp_sum(gate[j]));
        const float u = rounded(warp_sum(up[j]));
        if (lane == 0) activated[sorted_picks[start + j] * inter + n] = __float2bfloat16(rounded(g / (1.f + __expf(-g))) * u);
      }
    }
  }
}

// grid (ceil(hidden / warps), min(picks, held)): each pick's down product, rounded to bf16, at its pick's row of `products`.
template <typename Weights>
__global__ void down_per_expert(const __nv_bfloat16* __restrict__ activated, const int64_t* __restrict__ sorted_slots, const int64_t* __restrict__ sorted_picks,
                                int picks, int64_t held, Weights down, __nv_bfloat16* __restrict__ products) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);  // [kPairsPerPass, inter]
  const int inter = down.k;
  const int64_t hidden_size = down.rows;
  const Run run = run_of_block(sorted_slots, picks, held);
  if (run.first >= run.end) return;  // the same for the whole block
  const int64_t slot = run.slot;
  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  for (int start = run.first; start < run.end; start += kPairsPerPass) {
    const int count = min(kPairsPerPass, run.end - start);
    stage_rows(input, activated, sorted_picks, start, count, 1, inter);
    if (n >= hidden_size) continue;
    float sums[kPairsPerPass];
    row_dots<kPairsPerPass>(down, slot, n, input, inter, count, lane, sums);
#pragma unroll
    for (int j = 0; j < kPairsPerPass; j++) {
      if (j < count) {
        const float product = rounded(warp_sum(sums[j]));
        if (lane == 0) products[sorted_picks[start + j] * hidden_size + n] = __float2bfloat16(product);
      }
    }
  }
}

// grid (ceil(hidden / threads), tokens): Σ over a token's held picks, in pick order, of weight · product.
__global__ void combine_picks(const __nv_bfloat16* __restrict__ products, const int64_t* __restrict__ slots, const float* __restrict__ weights, int top_k,
                              int64_t held, int hidden_size, __nv_bfloat16* __restrict__ output) {
  const int token = blockIdx.y;
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= hidden_size) return;
  const int64_t first = static_cast<int64_t>(token) * top_k;
  float sum = 0.f;
  for (int pick = 0; pick < top_k; pick++) {
    if (!held_slot(slots[first + pick], held)) continue;
    sum += weights[first + pick] * __bfloat162float(products[(first + pick) * hidden_size + n]);
  }
  output[static_cast<int64_t>(token) * hidden_size + n] = __float2bfloat16(sum);
}

// ---- one weight (a projection) ------------------------------------------------------------------

// grid (ceil(rows / warps), ceil(m / kMax)): x [m, k] · W[row]ᵀ for a few rows of x (decode), one warp
// per weight row reading it once for up to kMax rows of x. The block's rows of x are staged in shared
// memory when they fit (`stage`, with the dynamic shared memory for kMax rows), else read from global memory (L1/L2). kMax 1 keeps
// several loads of the weight in flight per lane (row_dots' unrolling), which a single row needs.
template <int kMax, typename Weights>
__global__ void linear_rows(const __nv_bfloat16* __restrict__ x, int m, Weights weights, bool stage, __nv_bfloat16* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int lane = threadIdx.x % kWarp;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  const int first = blockIdx.y * kMax;
  const int count = min(kMax, m - first);
  const __nv_bfloat16* input = x + static_cast<int64_t>(first) * weights.k;
  if (stage) {
    auto* staged = reinterpret_cast<__nv_bfloat16*>(shared);
    for (int i = threadIdx.x * 8; i < count * weights.k; i += blockDim.x * 8)
      *reinterpret_cast<uint4*>(staged + i) = *reinterpret_cast<const uint4*>(input + i);
    __syncthreads();
    input = staged;
  }
  if (n >= weights.rows) return;
  float sums[kMax];
  row_dots<kMax>(weights, 0, n, input, weights.k, count, lane, sums);
#pragma unroll
  for (int j = 0; j < kMax; j++) {
    if (j < count) {
      const float value = warp_sum(sums[j]);
      if (lane == 0) out[static_cast<int64_t>(first + j) * weights.rows + n] = __float2bfloat16(value);
    }
  }
}

// grid (ceil(rows / warps), experts): one warp per row of a stack of weights, written as bf16 [experts, rows, k].
template <typename Weights>
__global__ void dequantize(Weights weights, __nv_bfloat16* __restrict__ output) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  const int64_t expert = blockIdx.y;
  if (n >= weights.rows) return;
  __nv_bfloat16* row = output + (expert * weights.rows + n) * weights.k;
  for (int base = lane * kValuesPerLane; base < weights.k; base += kWarp * kValuesPerLane) {
    float w[kValuesPerLane];
    weights.values(expert, n, base, w);
    alignas(16) __nv_bfloat16 values[kValuesPerLane];
#pragma unroll
    for (int i = 0; i < kValuesPerLane; i++) values[i] = __float2bfloat16(w[i]);
    *reinterpret_cast<uint4*>(row + base) = *reinterpret_cast<const uint4*>(values);
  }
}

}  // namespace deepseek_native::moe
