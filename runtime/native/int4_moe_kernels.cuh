// Device code of the int4 routed-expert kernels (int4_moe.cu holds the ATen entry points). Weights
// are Int4GroupQuantization's: uint8 [N, K/2] per expert (value 2j in the high nibble of byte j) and
// bf16 (scale, zero) pairs [K/group, N]; w = (q − 8)·scale + zero. Every warp reads whole weight rows,
// dequantises each value once in float32 and multiplies it with every input row it serves; sums are
// float32, rounded to bf16 where the bf16 path rounds its tensors.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

namespace deepseek_native::int4_moe {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kThreads = kWarp * kWarpsPerBlock;
constexpr int kValuesPerLane = 8;  // one 32-bit load of packed values
constexpr int kMidpoint = 8;
// Pairs of one expert multiplied per pass over its rows (their inputs staged in shared memory).
constexpr int kPairsPerPass = 8;

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ __forceinline__ float rounded(float value) { return __bfloat162float(__float2bfloat16(value)); }

// The lane's share of Σ_k w[k]·input_j[k] for `count` ≤ kMax inputs of K bf16 values each, in shared
// memory `input_stride` values apart. `row` is the weight row's K/2 bytes; `scales_zeros` its pair of
// group 0, groups `group_stride` pairs apart. Each value is dequantised once for all the inputs.
template <int kMax>
__device__ __forceinline__ void row_dots(const uint8_t* __restrict__ row, const __nv_bfloat162* __restrict__ scales_zeros, int64_t group_stride,
                                         int group_size, const __nv_bfloat16* __restrict__ input, int input_stride, int count, int k, int lane,
                                         float (&sums)[kMax]) {
#pragma unroll
  for (int j = 0; j < kMax; j++) sums[j] = 0.f;
  // One input: several rows' loads in flight. Several: their products already overlap the loads, and
  // unrolling them too cost more in registers than it gained (measured on an H200, docs/gpu.md).
  constexpr int kUnroll = kMax == 1 ? 4 : 1;
#pragma unroll kUnroll
  for (int base = lane * kValuesPerLane; base < k; base += kWarp * kValuesPerLane) {
    const uint32_t packed = *reinterpret_cast<const uint32_t*>(row + base / 2);
    const float2 sz = __bfloat1622float2(scales_zeros[(base / group_size) * group_stride]);
    const float offset = sz.y - kMidpoint * sz.x;  // (q − 8)·scale + zero = q·scale + (zero − 8·scale)
    float w[kValuesPerLane];
#pragma unroll
    for (int byte = 0; byte < 4; byte++) {
      const uint32_t b = (packed >> (8 * byte)) & 0xffu;
      w[2 * byte] = static_cast<float>(b >> 4) * sz.x + offset;
      w[2 * byte + 1] = static_cast<float>(b & 0xfu) * sz.x + offset;
    }
#pragma unroll
    for (int j = 0; j < kMax; j++) {
      if (j < count) {
        const uint4 x = *reinterpret_cast<const uint4*>(input + j * input_stride + base);
        const __nv_bfloat162* xs = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
        for (int byte = 0; byte < 4; byte++) {
          const float2 pair = __bfloat1622float2(xs[byte]);
          sums[j] += w[2 * byte] * pair.x + w[2 * byte + 1] * pair.y;
        }
      }
    }
  }
}

__device__ __forceinline__ bool held_slot(int64_t slot, int64_t held) { return slot >= 0 && slot < held; }

// ---- a block per pick (no more picks than held experts: grouping them would save nothing) ---------

// grid (ceil(inter / warps), picks); one warp per intermediate row n of a pick: the gate row n and
// the up row inter + n, then silu(gate)·up, each rounded to bf16 as the bf16 path's tensors are.
__global__ void gate_up_per_pick(const __nv_bfloat16* __restrict__ hidden, const int64_t* __restrict__ slots, int top_k, int64_t held,
                                 const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros, int group_size,
                                 int hidden_size, int inter, __nv_bfloat16* __restrict__ activated) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);
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
  const int64_t rows = 2LL * inter;
  const int64_t groups = hidden_size / group_size;
  const uint8_t* expert = packed + slot * rows * (hidden_size / 2);
  const __nv_bfloat162* expert_sz = scales_zeros + slot * groups * rows;  // [groups, rows] pairs
  float gate[1], up[1];
  row_dots<1>(expert + static_cast<int64_t>(n) * (hidden_size / 2), expert_sz + n, rows, group_size, input, 0, 1, hidden_size, lane, gate);
  row_dots<1>(expert + static_cast<int64_t>(inter + n) * (hidden_size / 2), expert_sz + inter + n, rows, group_size, input, 0, 1, hidden_size, lane, up);
  const float g = rounded(warp_sum(gate[0]));
  const float u = rounded(warp_sum(up[0]));
  if (lane == 0) activated[static_cast<int64_t>(pick) * inter + n] = __float2bfloat16(rounded(g / (1.f + __expf(-g))) * u);
}

// grid (ceil(hidden / warps), tokens); one warp per output column n of a token: Σ over the token's
// picks (in pick order) of weight · down_row_n · activated, each pick's product rounded to bf16 first.
__global__ void down_per_pick(const __nv_bfloat16* __restrict__ activated, const int64_t* __restrict__ slots, const float* __restrict__ weights,
                              int top_k, int64_t held, const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros,
                              int group_size, int hidden_size, int inter, __nv_bfloat16* __restrict__ output) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);  // [top_k, inter]
  const int token = blockIdx.y;
  const int64_t first = static_cast<int64_t>(token) * top_k;
  for (int i = threadIdx.x * 8; i < top_k * inter; i += blockDim.x * 8)
    *reinterpret_cast<uint4*>(input + i) = *reinterpret_cast<const uint4*>(activated + first * inter + i);
  __syncthreads();

  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (n >= hidden_size) return;
  const int64_t groups = inter / group_size;
  float sum = 0.f;
  for (int pick = 0; pick < top_k; pick++) {
    const int64_t slot = slots[first + pick];
    if (!held_slot(slot, held)) continue;
    float product[1];
    row_dots<1>(packed + (slot * hidden_size + n) * (inter / 2), scales_zeros + slot * groups * hidden_size + n, hidden_size, group_size,
                input + pick * inter, 0, 1, inter, lane, product);
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
__global__ void gate_up_per_expert(const __nv_bfloat16* __restrict__ hidden, const int64_t* __restrict__ sorted_slots, const int64_t* __restrict__ sorted_picks,
                                   int picks, int top_k, int64_t held, const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros,
                                   int group_size, int hidden_size, int inter, __nv_bfloat16* __restrict__ activated) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);  // [kPairsPerPass, hidden]
  const Run run = run_of_block(sorted_slots, picks, held);
  if (run.first >= run.end) return;  // the same for the whole block
  const int64_t slot = run.slot;
  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int64_t rows = 2LL * inter;
  const int64_t groups = hidden_size / group_size;
  const uint8_t* expert = packed + slot * rows * (hidden_size / 2);
  const __nv_bfloat162* expert_sz = scales_zeros + slot * groups * rows;
  for (int start = run.first; start < run.end; start += kPairsPerPass) {
    const int count = min(kPairsPerPass, run.end - start);
    stage_rows(input, hidden, sorted_picks, start, count, top_k, hidden_size);
    if (n >= inter) continue;  // no barrier below: a warp past the rows only joins the staging
    float gate[kPairsPerPass], up[kPairsPerPass];
    row_dots<kPairsPerPass>(expert + static_cast<int64_t>(n) * (hidden_size / 2), expert_sz + n, rows, group_size, input, hidden_size, count,
                            hidden_size, lane, gate);
    row_dots<kPairsPerPass>(expert + static_cast<int64_t>(inter + n) * (hidden_size / 2), expert_sz + inter + n, rows, group_size, input,
                            hidden_size, count, hidden_size, lane, up);
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
__global__ void down_per_expert(const __nv_bfloat16* __restrict__ activated, const int64_t* __restrict__ sorted_slots, const int64_t* __restrict__ sorted_picks,
                                int picks, int64_t held, const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros, int group_size,
                                int hidden_size, int inter, __nv_bfloat16* __restrict__ products) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);  // [kPairsPerPass, inter]
  const Run run = run_of_block(sorted_slots, picks, held);
  if (run.first >= run.end) return;  // the same for the whole block
  const int64_t slot = run.slot;
  const int lane = threadIdx.x % kWarp;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int64_t groups = inter / group_size;
  for (int start = run.first; start < run.end; start += kPairsPerPass) {
    const int count = min(kPairsPerPass, run.end - start);
    stage_rows(input, activated, sorted_picks, start, count, 1, inter);
    if (n >= hidden_size) continue;
    float sums[kPairsPerPass];
    row_dots<kPairsPerPass>(packed + (slot * hidden_size + n) * (inter / 2), scales_zeros + slot * groups * hidden_size + n, hidden_size, group_size,
                            input, inter, count, inter, lane, sums);
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

// grid (ceil(rows / warps)): one warp per row of one [N, K] int4 weight, written as bf16.
__global__ void dequantize(const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros, int group_size, int64_t rows, int k,
                           __nv_bfloat16* __restrict__ output) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (n >= rows) return;
  for (int base = lane * kValuesPerLane; base < k; base += kWarp * kValuesPerLane) {
    const uint32_t bytes = *reinterpret_cast<const uint32_t*>(packed + n * (k / 2) + base / 2);
    const float2 sz = __bfloat1622float2(scales_zeros[(base / group_size) * rows + n]);
    alignas(16) __nv_bfloat16 values[kValuesPerLane];
#pragma unroll
    for (int byte = 0; byte < 4; byte++) {
      const uint32_t b = (bytes >> (8 * byte)) & 0xffu;
      values[2 * byte] = __float2bfloat16((static_cast<float>(b >> 4) - kMidpoint) * sz.x + sz.y);
      values[2 * byte + 1] = __float2bfloat16((static_cast<float>(b & 0xfu) - kMidpoint) * sz.x + sz.y);
    }
    *reinterpret_cast<uint4*>(output + n * k + base) = *reinterpret_cast<const uint4*>(values);
  }
}

}  // namespace deepseek_native::int4_moe
