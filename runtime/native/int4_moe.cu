// Routed experts held as int4 (group-wise asymmetric, Int4GroupQuantization's layout) computed
// without the host: LibTorch's int4 kernel multiplies one weight per call, so routed experts through it
// need each expert's token count on the host; here the expert of each pick is read on the device, so a
// decode step with int4 experts can be captured as a CUDA graph. A batch with no more picks than held
// experts takes a block per pick (two kernels: gate/up with SwiGLU, then down with the weighted sum of
// each token's picks); a larger one sorts its picks by expert on the device and takes a block per
// expert, which reads the expert's rows once for all its picks (gate/up, down, then the weighted sum).
// A token's picks are summed in a fixed order, so results do not depend on timing. Device code:
// int4_moe_kernels.cuh.
#include "deepseek_native.h"
#include "int4_moe_kernels.cuh"
#include "native_error.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <atomic>

using deepseek_native::guarded;
namespace kernels = deepseek_native::int4_moe;

namespace {

const at::Tensor& tensor(void* handle, const char* name) {
  TORCH_CHECK(handle != nullptr, name, " is null");
  return *static_cast<at::Tensor*>(handle);
}

void check_shapes(int64_t k, int group_size, const char* what) {
  TORCH_CHECK(group_size % kernels::kValuesPerLane == 0, "the int4 group size must be a multiple of ", kernels::kValuesPerLane, ", not ", group_size);
  TORCH_CHECK(k % group_size == 0, what, " ", k, " is not a multiple of the group size ", group_size);
}

// Dynamic shared memory beyond the default 48 KiB must be allowed per kernel, once: the first call of
// a shape runs eagerly before any capture (warm-up), so the attribute is never set while capturing.
int shared_bytes(const void* kernel, std::atomic<int>& allowed, int64_t bytes) {
  TORCH_CHECK(bytes <= 200 * 1024, "an int4 expert kernel needs ", bytes, " bytes of shared memory; at most 200 KiB are supported");
  if (bytes > 48 * 1024 && bytes > allowed.load()) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    allowed.store(static_cast<int>(bytes));
  }
  return static_cast<int>(bytes);
}

std::atomic<int> gate_up_per_pick_shared{0}, down_per_pick_shared{0}, gate_up_per_expert_shared{0}, down_per_expert_shared{0};

const __nv_bfloat16* bf16(const at::Tensor& t) { return reinterpret_cast<const __nv_bfloat16*>(t.data_ptr()); }
__nv_bfloat16* bf16_out(at::Tensor& t) { return reinterpret_cast<__nv_bfloat16*>(t.data_ptr()); }
const __nv_bfloat162* pairs(const at::Tensor& t) { return reinterpret_cast<const __nv_bfloat162*>(t.data_ptr()); }
unsigned blocks(int64_t n, int64_t per_block) { return static_cast<unsigned>((n + per_block - 1) / per_block); }

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
    if (held == 0) return new at::Tensor(output.zero_());  // every pick is computed elsewhere
    const int h = static_cast<int>(hidden_size), i = static_cast<int>(inter), k = static_cast<int>(top_k);
    // Rows of picks computed elsewhere are left unwritten and never read.
    const int64_t picks = tokens * top_k;
    auto activated = at::empty({picks, inter}, hidden.options());
    if (picks <= held) {  // about one pick per expert at most: a block per pick (measured faster up to 8 tokens of V2-Lite)
      auto* gate_up_kernel = kernels::gate_up_per_pick;
      gate_up_kernel<<<dim3(blocks(inter, kernels::kWarpsPerBlock), static_cast<unsigned>(picks)), kernels::kThreads,
                       shared_bytes(reinterpret_cast<const void*>(gate_up_kernel), gate_up_per_pick_shared, hidden_size * 2), stream>>>(
          bf16(hidden), slots_c.data_ptr<int64_t>(), k, held, gate_up.data_ptr<uint8_t>(), pairs(gate_up_sz), group_size, h, i, bf16_out(activated));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      auto* down_kernel = kernels::down_per_pick;
      down_kernel<<<dim3(blocks(hidden_size, kernels::kWarpsPerBlock), static_cast<unsigned>(tokens)), kernels::kThreads,
                    shared_bytes(reinterpret_cast<const void*>(down_kernel), down_per_pick_shared, top_k * inter * 2), stream>>>(
          bf16(activated), slots_c.data_ptr<int64_t>(), weights.data_ptr<float>(), k, held, down.data_ptr<uint8_t>(), pairs(down_sz), group_size, h,
          i, bf16_out(output));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return new at::Tensor(std::move(output));
    }
    // More picks than experts: the picks sorted by expert (stable, so an expert's picks stay in token
    // order), a block per expert reading its rows once for all its picks.
    const auto [sorted_slots, sorted_picks] = at::sort(slots_c.view({picks}), /*stable=*/true, 0, /*descending=*/false);
    const auto runs = static_cast<unsigned>(std::min(picks, held));  // blocks per row range: see kernels::run_of_block
    auto* gate_up_kernel = kernels::gate_up_per_expert;
    gate_up_kernel<<<dim3(blocks(inter, kernels::kWarpsPerBlock), runs), kernels::kThreads,
                     shared_bytes(reinterpret_cast<const void*>(gate_up_kernel), gate_up_per_expert_shared, kernels::kPairsPerPass * hidden_size * 2),
                     stream>>>(bf16(hidden), sorted_slots.data_ptr<int64_t>(), sorted_picks.data_ptr<int64_t>(), static_cast<int>(picks), k, held,
                               gate_up.data_ptr<uint8_t>(), pairs(gate_up_sz), group_size, h, i, bf16_out(activated));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    auto products = at::empty({picks, hidden_size}, hidden.options());
    auto* down_kernel = kernels::down_per_expert;
    down_kernel<<<dim3(blocks(hidden_size, kernels::kWarpsPerBlock), runs), kernels::kThreads,
                  shared_bytes(reinterpret_cast<const void*>(down_kernel), down_per_expert_shared, kernels::kPairsPerPass * inter * 2), stream>>>(
        bf16(activated), sorted_slots.data_ptr<int64_t>(), sorted_picks.data_ptr<int64_t>(), static_cast<int>(picks), held,
        down.data_ptr<uint8_t>(), pairs(down_sz), group_size, h, i, bf16_out(products));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kernels::combine_picks<<<dim3(blocks(hidden_size, kernels::kThreads), static_cast<unsigned>(tokens)), kernels::kThreads, 0, stream>>>(
        bf16(products), slots_c.data_ptr<int64_t>(), weights.data_ptr<float>(), k, held, h, bf16_out(output));
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
    kernels::dequantize<<<blocks(rows, kernels::kWarpsPerBlock), kernels::kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        packed.data_ptr<uint8_t>(), pairs(sz), group_size, rows, static_cast<int>(k), bf16_out(output));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return new at::Tensor(std::move(output));
  });
}
