// Attention that LibTorch has and TorchSharp does not expose: FlashAttention-2's variable-length
// forward, which packs sequences of different lengths without padding and aligns its causal mask to
// the bottom right, so one call computes a prefill chunk over its cached context (and fresh prompts,
// and decode rows) with no explicit mask.
#include "deepseek_native.h"
#include "native_error.h"

#include <ATen/ATen.h>

#include <tuple>

using deepseek_native::guarded;

namespace {

const at::Tensor& tensor(void* handle, const char* name) {
  TORCH_CHECK(handle != nullptr, name, " is null");
  return *static_cast<at::Tensor*>(handle);
}

void* owned(at::Tensor result) { return new at::Tensor(std::move(result)); }

}  // namespace

extern "C" void* dsn_flash_attention_varlen(void* q, void* k, void* v, void* cu_seqlens_q, void* cu_seqlens_k, int64_t max_q,
                                            int64_t max_k, int is_causal, double scale) {
  return guarded<void*>(nullptr, [&] {
    const auto& query = tensor(q, "q");
    const auto& cu_q = tensor(cu_seqlens_q, "cu_seqlens_q");
    const auto& cu_k = tensor(cu_seqlens_k, "cu_seqlens_k");
    // The packed form is chosen by passing the cumulative lengths; a 4-D query would be read as
    // [batch, seqlen, heads, dim] by the same operator, so refuse it here rather than misread it.
    TORCH_CHECK(query.dim() == 3, "q must be [total_q, heads, head_dim], not ", query.sizes());
    TORCH_CHECK(cu_q.scalar_type() == at::kInt && cu_k.scalar_type() == at::kInt, "cu_seqlens_q and cu_seqlens_k must be int32, not ",
                cu_q.scalar_type(), " and ", cu_k.scalar_type());
    TORCH_CHECK(max_q > 0 && max_k > 0, "max_q and max_k must be positive, not ", max_q, " and ", max_k);
    // (output, logsumexp, rng_state, unused, debug_attn_mask): only the output is kept. No dropout,
    // no debug mask; the trailing window, seqused_k and alibi arguments keep their defaults.
    auto result = at::_flash_attention_forward(query, tensor(k, "k"), tensor(v, "v"), cu_q, cu_k, max_q, max_k, /*dropout_p=*/0.0,
                                               is_causal != 0, /*return_debug_mask=*/false, scale);
    return owned(std::get<0>(std::move(result)));
  });
}
