// How the helper's own kernels read a quantised weight: one struct per format, passed to the kernels by
// value, that gives a lane the eight float32 weight values of row `row` of expert `expert` starting at
// column `base` (a multiple of kValuesPerLane). The kernels (moe_kernels.cuh) are written once over this;
// a stack of one weight is expert 0.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

namespace deepseek_native {

constexpr int kValuesPerLane = 8;

// Int4GroupQuantization's layout: uint8 [experts, rows, k/2] (value 2j in the high nibble of byte j) and
// bf16 (scale, zero) pairs [experts, k/group, rows]; w = (q − 8)·scale + zero, left in float32 (what
// LibTorch's int4 kernel multiplies by).
struct Int4Rows {
  const uint8_t* packed;
  const __nv_bfloat162* scales_zeros;
  int group_size;
  int64_t rows;
  int k;

  __device__ __forceinline__ void values(int64_t expert, int64_t row, int base, float (&w)[kValuesPerLane]) const {
    const uint32_t bytes = *reinterpret_cast<const uint32_t*>(packed + (expert * rows + row) * (k / 2) + base / 2);
    const int64_t groups = k / group_size;
    const float2 sz = __bfloat1622float2(scales_zeros[(expert * groups + base / group_size) * rows + row]);
    const float offset = sz.y - 8.f * sz.x;  // (q − 8)·scale + zero = q·scale + (zero − 8·scale)
#pragma unroll
    for (int byte = 0; byte < 4; byte++) {
      const uint32_t b = (bytes >> (8 * byte)) & 0xffu;
      w[2 * byte] = static_cast<float>(b >> 4) * sz.x + offset;
      w[2 * byte + 1] = static_cast<float>(b & 0xfu) * sz.x + offset;
    }
  }
};

// DeepSeek-V3's block-scaled FP8: E4M3 bytes [experts, rows, k] and float32 weight_scale_inv per 128×128
// block, [experts, grid_rows, ceil(k/128)]. A gate/up stack keeps the gate's grid and the up's apart
// (each ends in its own partial block when inter is not a multiple of 128): rows from `split` on use the
// grid rows from ceil(split/128) on. Each value is e4m3 × scale rounded to bf16: the weight the
// dequantised bf16 model holds, so a product here is that model's up to the order of the sums.
struct Fp8Rows {
  static constexpr int kBlock = 128;
  const uint8_t* bytes;
  const float* scale_inv;
  int64_t rows;
  int k;
  int64_t split;      // rows of the first grid (== rows when there is one)
  int64_t grid_rows;  // scale rows per expert

  __device__ __forceinline__ void values(int64_t expert, int64_t row, int base, float (&w)[kValuesPerLane]) const {
    const uint2 raw = *reinterpret_cast<const uint2*>(bytes + (expert * rows + row) * k + base);
    const int64_t block_row = row < split ? row / kBlock : (split + kBlock - 1) / kBlock + (row - split) / kBlock;
    const int64_t k_blocks = (k + kBlock - 1) / kBlock;
    const float scale = scale_inv[(expert * grid_rows + block_row) * k_blocks + base / kBlock];
    const __nv_fp8x2_storage_t* pairs = reinterpret_cast<const __nv_fp8x2_storage_t*>(&raw);
#pragma unroll
    for (int p = 0; p < 4; p++) {
      const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(pairs[p], __NV_E4M3));  // exact: E4M3 ⊂ fp16
      const float2 f = __half22float2(h);
      w[2 * p] = __bfloat162float(__float2bfloat16(f.x * scale));
      w[2 * p + 1] = __bfloat162float(__float2bfloat16(f.y * scale));
    }
  }
};

}  // namespace deepseek_native
