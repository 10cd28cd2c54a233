// Routed experts held as int4 (group-wise asymmetric, Int4GroupQuantization's layout) computed for a
// few tokens without the host: one kernel for every pair's gate/up products and SwiGLU, one for the
// down products and the weighted sum of each token's picks. LibTorch's int4 kernel multiplies one
// weight per call, so routed experts through it need each expert's token count on the host; here the
// expert of a pair is read on the device, so a decode step with int4 experts can be captured as a
// CUDA graph. Each warp reads whole weight rows (the bytes a small batch is bound by) and reduces
// them in float32; a token's picks are summed in a fixed order, so results do not depend on timing.
#include "deepseek_native.h"
#include "native_error.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>

using deepseek_native::guarded;

namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kValuesPerLane = 8;  // one 32-bit load of packed values
constexpr int kMidpoint = 8;

const at::Tensor& tensor(void* handle, const char* name) {
  TORCH_CHECK(handle != nullptr, name, " is null");
  return *static_cast<at::Tensor*>(handle);
}

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Σ over the row's K values of dequantised weight × input, for the lane's share of the row.
// `row` holds K/2 bytes (value 2j in the high nibble of byte j); `scales_zeros` points at the row's
// (scale, zero) of group 0, groups `group_stride` bf16 pairs apart; `input` is K bf16 values in
// shared memory.
__device__ __forceinline__ float row_dot(const uint8_t* __restrict__ row, const __nv_bfloat162* __restrict__ scales_zeros,
                                         int64_t group_stride, int group_size, const __nv_bfloat16* __restrict__ input, int k, int lane) {
  float sum = 0.f;
#pragma unroll 4
  for (int base = lane * kValuesPerLane; base < k; base += kWarp * kValuesPerLane) {
    const uint32_t packed = *reinterpret_cast<const uint32_t*>(row + base / 2);
    const float2 sz = __bfloat1622float2(scales_zeros[(base / group_size) * group_stride]);
    // (q − 8)·scale + zero = q·scale + (zero − 8·scale)
    const float offset = sz.y - kMidpoint * sz.x;
    const uint4 x = *reinterpret_cast<const uint4*>(input + base);
    const __nv_bfloat162* xs = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
    for (int byte = 0; byte < 4; byte++) {
      const uint32_t b = (packed >> (8 * byte)) & 0xffu;
      const float2 pair = __bfloat1622float2(xs[byte]);
      sum += (static_cast<float>(b >> 4) * sz.x + offset) * pair.x;
      sum += (static_cast<float>(b & 0xfu) * sz.x + offset) * pair.y;
    }
  }
  return sum;
}

__device__ __forceinline__ float rounded(float value) { return __bfloat162float(__float2bfloat16(value)); }

// grid (ceil(inter / warps), pairs); one warp per intermediate row n of a pair: the gate row n and
// the up row inter + n, then silu(gate)·up, each rounded to bf16 as the bf16 path's tensors are.
__global__ void gate_up_kernel(const __nv_bfloat16* __restrict__ hidden, const int64_t* __restrict__ slots, int top_k, int64_t held,
                               const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros, int group_size,
                               int hidden_size, int inter, __nv_bfloat16* __restrict__ activated) {
  extern __shared__ __align__(16) unsigned char shared[];
  auto* input = reinterpret_cast<__nv_bfloat16*>(shared);
  const int pair = blockIdx.y;
  const int64_t slot = slots[pair];
  if (slot < 0 || slot >= held) return;  // computed elsewhere: the down kernel skips it too
  const __nv_bfloat16* x = hidden + static_cast<int64_t>(pair / top_k) * hidden_size;
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
  const float gate = warp_sum(row_dot(expert + n * (hidden_size / 2), expert_sz + n, rows, group_size, input, hidden_size, lane));
  const float up = warp_sum(row_dot(expert + (inter + n) * (hidden_size / 2), expert_sz + inter + n, rows, group_size, input, hidden_size, lane));
  if (lane == 0) {
    const float g = rounded(gate);
    const float silu = rounded(g / (1.f + __expf(-g)));
    activated[static_cast<int64_t>(pair) * inter + n] = __float2bfloat16(silu * rounded(up));
  }
}

// grid (ceil(hidden / warps), tokens); one warp per output column n of a token: Σ over the token's
// picks (in pick order) of weight · down_row_n · activated, in float32, rounded once.
__global__ void down_kernel(const __nv_bfloat16* __restrict__ activated, const int64_t* __restrict__ slots, const float* __restrict__ weights,
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
    if (slot < 0 || slot >= held) continue;
    const uint8_t* row = packed + (slot * hidden_size + n) * (inter / 2);
    const __nv_bfloat162* row_sz = scales_zeros + slot * groups * hidden_size + n;  // [groups, hidden] pairs
    // The expert's output is rounded to bf16 before weighting, as the bf16 path's is.
    sum += weights[first + pick] * rounded(warp_sum(row_dot(row, row_sz, hidden_size, group_size, input + pick * inter, inter, lane)));
  }
  if (lane == 0) output[static_cast<int64_t>(token) * hidden_size + n] = __float2bfloat16(sum);
}

// grid (ceil(rows / warps), 1): one warp per row of one [N, K] int4 weight, written as bf16.
__global__ void dequantize_kernel(const uint8_t* __restrict__ packed, const __nv_bfloat162* __restrict__ scales_zeros, int group_size,
                                  int64_t rows, int k, __nv_bfloat16* __restrict__ output) {
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

void check_shapes(int64_t k, int group_size, const char* what) {
  TORCH_CHECK(group_size % kValuesPerLane == 0, "the int4 group size must be a multiple of ", kValuesPerLane, ", not ", group_size);
  TORCH_CHECK(k % group_size == 0 && k % kValuesPerLane == 0, what, " ", k, " is not a multiple of the group size ", group_size);
}

int shared_bytes_for(const void* kernel, int64_t bytes) {
  TORCH_CHECK(bytes <= 200 * 1024, "an int4 expert kernel needs ", bytes, " bytes of shared memory; at most 200 KiB are supported");
  if (bytes > 48 * 1024) C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  return static_cast<int>(bytes);
}

}  // namespace

extern "C" void* dsn_int4_moe(void* hidden_h, void* slots_h, void* weights_h, void* gate_up_packed_h, void* gate_up_scales_h,
                              void* down_packed_h, void* down_scales_h, int group_size) {
  return guarded<void*>(nullptr, [&] {
    auto hidden = tensor(hidden_h, "hidden").contiguous();
    // The kernels read rows 16 bytes at a time; a view that starts mid-vector is copied first.
    if (reinterpret_cast<uintptr_t>(hidden.data_ptr()) % 16 != 0) hidden = hidden.clone();
    const auto& slots = tensor(slots_h, "slots");
    const auto& gate_up = tensor(gate_up_packed_h, "gate_up_packed");
    const auto& gate_up_sz = tensor(gate_up_scales_h, "gate_up_scales");
    const auto& down = tensor(down_packed_h, "down_packed");
    const auto& down_sz = tensor(down_scales_h, "down_scales");
    TORCH_CHECK(hidden.is_cuda() && hidden.scalar_type() == at::kBFloat16 && hidden.dim() == 2, "hidden must be bf16 [tokens, hidden] on CUDA");
    TORCH_CHECK(slots.scalar_type() == at::kLong && slots.dim() == 2 && slots.size(0) == hidden.size(0), "slots must be int64 [tokens, k]");
    TORCH_CHECK(gate_up.scalar_type() == at::kByte && gate_up.dim() == 3 && gate_up.is_contiguous(), "gate_up_packed must be uint8 [experts, 2·inter, hidden/2]");
    TORCH_CHECK(down.scalar_type() == at::kByte && down.dim() == 3 && down.is_contiguous(), "down_packed must be uint8 [experts, hidden, inter/2]");
    const int64_t tokens = hidden.size(0), hidden_size = hidden.size(1), top_k = slots.size(1), held = gate_up.size(0);
    const int64_t inter = gate_up.size(1) / 2;
    check_shapes(hidden_size, group_size, "hidden");
    check_shapes(inter, group_size, "the intermediate size");
    TORCH_CHECK(gate_up.size(2) * 2 == hidden_size && down.size(0) == held && down.size(1) == hidden_size && down.size(2) * 2 == inter,
                "the int4 expert stacks do not match hidden ", hidden_size);
    TORCH_CHECK(gate_up_sz.scalar_type() == at::kBFloat16 && gate_up_sz.is_contiguous()
                    && gate_up_sz.sizes() == at::IntArrayRef({held, hidden_size / group_size, 2 * inter, 2}),
                "gate_up_scales must be contiguous bf16 [experts, hidden/group, 2·inter, 2]");
    TORCH_CHECK(down_sz.scalar_type() == at::kBFloat16 && down_sz.is_contiguous()
                    && down_sz.sizes() == at::IntArrayRef({held, inter / group_size, hidden_size, 2}),
                "down_scales must be contiguous bf16 [experts, inter/group, hidden, 2]");
    const c10::cuda::CUDAGuard guard(hidden.device());
    auto stream = at::cuda::getCurrentCUDAStream();
    const auto slots_c = slots.contiguous();
    const auto weights = tensor(weights_h, "weights").to(at::kFloat).contiguous();
    TORCH_CHECK(weights.sizes() == slots.sizes(), "weights must be [tokens, k] like slots");
    auto output = at::empty({tokens, hidden_size}, hidden.options());
    if (tokens == 0) return new at::Tensor(std::move(output));
    // Rows of picks computed elsewhere are left unwritten and never read.
    auto activated = at::empty({tokens * top_k, inter}, hidden.options());
    const int threads = kWarp * kWarpsPerBlock;
    const int gate_up_shared = shared_bytes_for(reinterpret_cast<const void*>(gate_up_kernel), hidden_size * 2);
    gate_up_kernel<<<dim3((inter + kWarpsPerBlock - 1) / kWarpsPerBlock, tokens * top_k), threads, gate_up_shared, stream>>>(
        reinterpret_cast<const __nv_bfloat16*>(hidden.data_ptr()), slots_c.data_ptr<int64_t>(), static_cast<int>(top_k), held,
        gate_up.data_ptr<uint8_t>(), reinterpret_cast<const __nv_bfloat162*>(gate_up_sz.data_ptr()), group_size,
        static_cast<int>(hidden_size), static_cast<int>(inter), reinterpret_cast<__nv_bfloat16*>(activated.data_ptr()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int down_shared = shared_bytes_for(reinterpret_cast<const void*>(down_kernel), top_k * inter * 2);
    down_kernel<<<dim3((hidden_size + kWarpsPerBlock - 1) / kWarpsPerBlock, tokens), threads, down_shared, stream>>>(
        reinterpret_cast<const __nv_bfloat16*>(activated.data_ptr()), slots_c.data_ptr<int64_t>(), weights.data_ptr<float>(),
        static_cast<int>(top_k), held, down.data_ptr<uint8_t>(), reinterpret_cast<const __nv_bfloat162*>(down_sz.data_ptr()), group_size,
        static_cast<int>(hidden_size), static_cast<int>(inter), reinterpret_cast<__nv_bfloat16*>(output.data_ptr()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return new at::Tensor(std::move(output));
  });
}

extern "C" void* dsn_int4_dequantize(void* packed_h, void* scales_h, int group_size) {
  return guarded<void*>(nullptr, [&] {
    const auto& packed = tensor(packed_h, "packed");
    const auto& sz = tensor(scales_h, "scales_and_zeros");
    TORCH_CHECK(packed.is_cuda() && packed.scalar_type() == at::kByte && packed.dim() == 2 && packed.is_contiguous(),
                "packed must be contiguous uint8 [N, K/2] on CUDA");
    const int64_t rows = packed.size(0), k = packed.size(1) * 2;
    check_shapes(k, group_size, "K");
    TORCH_CHECK(sz.scalar_type() == at::kBFloat16 && sz.is_contiguous() && sz.sizes() == at::IntArrayRef({k / group_size, rows, 2}),
                "scales_and_zeros must be contiguous bf16 [K/group, N, 2]");
    const c10::cuda::CUDAGuard guard(packed.device());
    auto output = at::empty({rows, k}, packed.options().dtype(at::kBFloat16));
    if (rows == 0) return new at::Tensor(std::move(output));
    dequantize_kernel<<<(rows + kWarpsPerBlock - 1) / kWarpsPerBlock, kWarp * kWarpsPerBlock, 0, at::cuda::getCurrentCUDAStream()>>>(
        packed.data_ptr<uint8_t>(), reinterpret_cast<const __nv_bfloat162*>(sz.data_ptr()), group_size, rows, static_cast<int>(k),
        reinterpret_cast<__nv_bfloat16*>(output.data_ptr()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return new at::Tensor(std::move(output));
  });
}
