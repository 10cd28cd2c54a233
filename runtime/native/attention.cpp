// Attention that LibTorch has and TorchSharp does not expose: the variable-length forwards of
// FlashAttention-2 and of the memory-efficient (CUTLASS) kernel, which pack sequences of different
// lengths without padding and align their causal mask to the bottom right, so one call computes a
// prefill chunk over its cached context (and fresh prompts, and decode rows) with no explicit mask.
// FlashAttention-2 takes one head dim for q, k and v; the memory-efficient kernel lets v's differ.
#include "deepseek_native.h"
#include "native_error.h"
#include "tensor_handles.h"

#include <ATen/ATen.h>

#include <tuple>

using deepseek_native::guarded;
using deepseek_native::tensor;
using deepseek_native::owned;

namespace {

// What both varlen forms require of their arguments (the operators would misread a 4-D query as
// [batch, seqlen, heads, dim] rather than fail).
const at::Tensor& checked_query(void* q, const at::Tensor& cu_q, const at::Tensor& cu_k, int64_t max_q, int64_t max_k) {
  const auto& query = tensor(q, "q");
  TORCH_CHECK(query.dim() == 3, "q must be [total_q, heads, head_dim], not ", query.sizes());
  TORCH_CHECK(cu_q.scalar_type() == at::kInt && cu_k.scalar_type() == at::kInt, "cu_seqlens_q and cu_seqlens_k must be int32, not ",
              cu_q.scalar_type(), " and ", cu_k.scalar_type());
  TORCH_CHECK(max_q > 0 && max_k > 0, "max_q and max_k must be positive, not ", max_q, " and ", max_k);
  return query;
}

}  // namespace

extern "C" void* dsn_flash_attention_varlen(void* q, void* k, void* v, void* cu_seqlens_q, void* cu_seqlens_k, int64_t max_q,
                                            int64_t max_k, int is_causal, double scale) {
  return guarded<void*>(nullptr, [&] {
    const auto& cu_q = tensor(cu_seqlens_q, "cu_seqlens_q");
    const auto& cu_k = tensor(cu_seqlens_k, "cu_seqlens_k");
    const auto& query = checked_query(q, cu_q, cu_k, max_q, max_k);
    // The packed form is chosen by passing the cumulative lengths. Of (output, logsumexp, rng_state,
    // unused, debug_attn_mask) only the output is kept. No dropout, no debug mask; the trailing window,
    // seqused_k and alibi arguments keep their defaults.
    auto result = at::_flash_attention_forward(query, tensor(k, "k"), tensor(v, "v"), cu_q, cu_k, max_q, max_k, /*dropout_p=*/0.0,
                                               is_causal != 0, /*return_debug_mask=*/false, scale);
    return owned(std::get<0>(std::move(result)));
  });
}

extern "C" void* dsn_efficient_attention_varlen(void* q, void* k, void* v, void* cu_seqlens_q, void* cu_seqlens_k, int64_t max_q,
                                                int64_t max_k, int is_causal, double scale) {
  return guarded<void*>(nullptr, [&] {
    const auto& cu_q = tensor(cu_seqlens_q, "cu_seqlens_q");
    const auto& cu_k = tensor(cu_seqlens_k, "cu_seqlens_k");
    const auto& query = checked_query(q, cu_q, cu_k, max_q, max_k);
    // The packed form of this operator reads a batch of one, [1, total, heads, dim]. Mask type 2 is
    // causal from the bottom right (per sequence: keys − queries is the diagonal's offset), 0 none.
    // (output, logsumexp, philox_seed, philox_offset, max_seqlen_batch_q, max_seqlen_batch_k): the output kept.
    auto result = at::_efficient_attention_forward(query.unsqueeze(0), tensor(k, "k").unsqueeze(0), tensor(v, "v").unsqueeze(0),
                                                   /*bias=*/std::nullopt, cu_q, cu_k, max_q, max_k, /*dropout_p=*/0.0,
                                                   /*custom_mask_type=*/is_causal != 0 ? 2 : 0, /*compute_log_sumexp=*/false, scale);
    return owned(std::get<0>(std::move(result)).squeeze(0));
  });
}
