// The matrix products TorchSharp does not expose: the grouped per-expert GEMM and the int4
// weight-only kernels (the ones gpt-fast serves with).
#include "deepseek_native.h"
#include "native_error.h"
#include "tensor_handles.h"

#include <ATen/ATen.h>

using deepseek_native::guarded;
using deepseek_native::tensor;
using deepseek_native::owned;

extern "C" void* dsn_grouped_mm(void* a, void* b, void* offsets) {
  return guarded<void*>(nullptr, [&] {
    const auto& offs = tensor(offsets, "offsets");
    TORCH_CHECK(offs.scalar_type() == at::kInt, "offsets must be int32, not ", offs.scalar_type());
    return owned(at::_grouped_mm(tensor(a, "a"), tensor(b, "b"), offs));
  });
}

extern "C" void* dsn_rms_norm(void* x, void* weight, double eps) {
  return guarded<void*>(nullptr, [&] {
    const auto& input = tensor(x, "x");
    return owned(at::rms_norm(input, {input.size(-1)}, tensor(weight, "weight"), eps));
  });
}

extern "C" void* dsn_int4_pack(void* weight, int inner_k_tiles) {
  return guarded<void*>(nullptr, [&] { return owned(at::_convert_weight_to_int4pack(tensor(weight, "weight"), inner_k_tiles)); });
}

extern "C" void* dsn_int4_mm(void* x, void* packed, int group_size, void* scales_and_zeros) {
  return guarded<void*>(nullptr, [&] {
    return owned(at::_weight_int4pack_mm(tensor(x, "x"), tensor(packed, "packed"), group_size,
                                         tensor(scales_and_zeros, "scales_and_zeros")));
  });
}
