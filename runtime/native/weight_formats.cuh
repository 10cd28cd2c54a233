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

  // The scale of the block holding (row, column) of expert `expert`.
  __device__ __forceinline__ float scale(int64_t expert, int64_t row, int column) const {
    const int64_t block_row = row < split ? row / kBlock : (split + kBlock - 1) / kBlock + (row - split) / kBlock;
    const int64_t k_blocks = (k + kBlock - 1) / kBlock;
    return scale_inv[(expert * grid_rows + block_row) * k_blocks + column / kBlock];
  }

  // Two E4M3 values times their scale, rounded to bf16.
  __device__ __forceinline__ static __nv_bfloat162 scaled(__nv_fp8x2_storage_t pair, float scale) {
    const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));  // exact: E4M3 ⊂ fp16
    return __floats2bfloat162_rn(f.x * scale, f.y * scale);
  }

  // Four E4M3 bytes as their exact values in bf16 (E4M3 ⊂ bf16), pairs (b0, b1) and (b2, b3): each byte's
  // sign and magnitude bits moved into bf16's fields, which gives the value times 2^-120 (the exponent
  // biases are 127 and 7; subnormals included), then one exact multiply by 2^120. Integer operations and
  // one bf16 multiply per pair, where a conversion through float costs several.
  __device__ __forceinline__ static void exact_bf16(uint32_t four, __nv_bfloat162& low, __nv_bfloat162& high) {
    const uint32_t first = (four & 0xffu) | ((four & 0xff00u) << 8);           // b0 in bits 0-7, b1 in 16-23
    const uint32_t second = ((four >> 16) & 0xffu) | ((four >> 8) & 0xff0000u);  // b2, b3
    const uint32_t a = ((first & 0x00800080u) << 8) | ((first & 0x007f007fu) << 4);
    const uint32_t b = ((second & 0x00800080u) << 8) | ((second & 0x007f007fu) << 4);
    const __nv_bfloat162 unbias = __floats2bfloat162_rn(0x1p120f, 0x1p120f);
    low = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), unbias);
    high = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&b), unbias);
  }

  __device__ __forceinline__ void values(int64_t expert, int64_t row, int base, float (&w)[kValuesPerLane]) const {
    const uint2 raw = *reinterpret_cast<const uint2*>(bytes + (expert * rows + row) * k + base);
    const float s = scale(expert, row, base);
    const __nv_fp8x2_storage_t* pairs = reinterpret_cast<const __nv_fp8x2_storage_t*>(&raw);
#pragma unroll
    for (int p = 0; p < 4; p++) {
      const float2 f = __bfloat1622float2(scaled(pairs[p], s));
      w[2 * p] = f.x;
      w[2 * p + 1] = f.y;
    }
  }
};

}  // namespace deepseek_native
