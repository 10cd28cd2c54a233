// C ABI of the DeepSeek runtime's native GPU helper (libdeepseek_native.so).
//
// The helper reaches the parts of PyTorch's LibTorch that TorchSharp does not expose: CUDA graph
// capture and replay, the grouped (per-expert) matrix product, the variable-length attention
// forwards, the int4 weight-only kernels and NCCL collectives through c10d. It is compiled against the very LibTorch the process runs on, so
// a tensor crosses the boundary as TorchSharp's native handle, an `at::Tensor*`:
//   - arguments are borrowed (the caller keeps ownership);
//   - a returned tensor is a new `at::Tensor*` that the caller owns (TorchSharp disposes it).
// No C++ exception crosses the boundary: a function that fails returns NULL or a non-zero status,
// and dsn_last_error() gives the message, per thread.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DSN_ABI_VERSION 7

// The library is built with hidden visibility; only these functions are exported.
#define DSN_API __attribute__((visibility("default")))

// Version of this ABI; a caller refuses a helper whose version differs from the one it was written for.
DSN_API int dsn_abi_version(void);

// The last failure's message on the calling thread ("" when none); valid until the next call that fails.
DSN_API const char* dsn_last_error(void);

// ---- CUDA graphs --------------------------------------------------------------------------------
// A pool lets several graphs (one per batch-size bucket) share one private memory pool. Sharing is
// safe while the graphs replay one at a time and each replay's outputs are consumed before the next
// replay of another graph overwrites them.
DSN_API void* dsn_graph_pool_create(void);
DSN_API void dsn_graph_pool_destroy(void* pool);

// Starts capturing the calling thread's work on `device`: the current CUDA stream becomes a capture
// stream (which first waits for the previous current stream) until dsn_graph_capture_end.
// `pool` may be NULL (the graph gets a private pool of its own); `device` < 0 means the current
// device. Returns the graph, or NULL.
DSN_API void* dsn_graph_capture_begin(void* pool, int device);
// Ends the capture, instantiates the graph and restores the previous current stream. 0 on success;
// on failure the graph is left empty (destroy it).
DSN_API int dsn_graph_capture_end(void* graph);
// Launches the captured work on the current stream. 0 on success.
DSN_API int dsn_graph_replay(void* graph);
// Frees the graph (ending a capture still in progress, as after a failure inside it).
DSN_API void dsn_graph_destroy(void* graph);

// ---- Grouped expert GEMM --------------------------------------------------------------------------
// at::_grouped_mm: `a` [tokens, K] sorted by group, `b` [groups, K, N], `offsets` int32 [groups]
// (cumulative end row of each group). Returns [tokens, N], or NULL. bf16 on Hopper.
DSN_API void* dsn_grouped_mm(void* a, void* b, void* offsets);

// ---- Normalisation ------------------------------------------------------------------------------
// at::rms_norm over the last dimension (one fused kernel on CUDA): `x` [..., N], `weight` [N], in
// float32 inside, the result in x's dtype. Returns it, or NULL.
DSN_API void* dsn_rms_norm(void* x, void* weight, double eps);

// ---- Attention (attention.cpp) --------------------------------------------------------------------
// at::_flash_attention_forward in its variable-length form (FlashAttention-2): S sequences packed
// without padding, q [total_q, H, D] and k, v [total_k, H, D], one head dim D for all three (a
// multiple of 8, at most 256; a smaller v is padded by the caller), the last dimension contiguous;
// int32 cu_seqlens_q / cu_seqlens_k [S+1] on the device (each sequence's first row, then the total);
// max_q / max_k the longest sequence of each, host values (they size the kernel's grid, so a call
// cannot be captured for other lengths). With is_causal != 0 the mask is aligned bottom-right: query i
// of a sequence of n queries over c keys sees keys 0..c−n+i (a chunk after its cached context). Scores
// are scaled by `scale`. fp16 or bf16 on sm80 or newer. Returns [total_q, H, D], or NULL.
DSN_API void* dsn_flash_attention_varlen(void* q, void* k, void* v, void* cu_seqlens_q, void* cu_seqlens_k, int64_t max_q,
                                         int64_t max_k, int is_causal, double scale);
// The same contract through at::_efficient_attention_forward (the memory-efficient CUTLASS kernel, mask
// type "causal from bottom right"), which lets v's head dim differ: v [total_k, H, Dv] (last dimension
// contiguous, strides multiples of 8 elements) → [total_q, H, Dv]. fp16, bf16 or float32.
DSN_API void* dsn_efficient_attention_varlen(void* q, void* k, void* v, void* cu_seqlens_q, void* cu_seqlens_k, int64_t max_q,
                                             int64_t max_k, int is_causal, double scale);

// ---- int4 weight-only ---------------------------------------------------------------------------
// at::_convert_weight_to_int4pack: `weight` uint8 [N, K/2] (two 4-bit values per byte, the
// even-indexed one in the high nibble) → the tiled layout the CUDA kernel reads. inner_k_tiles ∈ {2,4,8}.
DSN_API void* dsn_int4_pack(void* weight, int inner_k_tiles);
// at::_weight_int4pack_mm: `x` bf16 [M, K] times the packed weight's transpose → bf16 [M, N];
// `scales_and_zeros` bf16 [K/group_size, N, 2].
DSN_API void* dsn_int4_mm(void* x, void* packed, int group_size, void* scales_and_zeros);

// ---- int4 routed experts (quantized_moe.cu) ---------------------------------------------------------
// Routed experts as int4 stacks, each expert's weight in the layout above before packing (uint8
// [N, K/2], bf16 scales and zeros [K/group, N, 2]), stacked: gate/up [E, 2·inter, hidden/2] with
// [E, hidden/group, 2·inter, 2], down [E, hidden, inter/2] with [E, inter/group, hidden, 2]. For bf16
// `hidden` [T, hidden], int64 `slots` [T, k] and `weights` [T, k]: Σ_k weights[t,k] ·
// down_{slot}(silu(gate_{slot}(x)) · up_{slot}(x)), bf16 [T, hidden]; a slot outside [0, E) adds
// nothing. No host synchronisation (capturable): a block per pick while picks ≤ E, else the picks
// sorted by expert on the device and a block per expert; group_size a multiple of 8.
DSN_API void* dsn_int4_moe(void* hidden, void* slots, void* weights, void* gate_up_packed, void* gate_up_scales,
                           void* down_packed, void* down_scales, int group_size);
// One such int4 weight (uint8 [N, K/2], bf16 [K/group, N, 2]) dequantised to bf16 [N, K] in one kernel.
DSN_API void* dsn_int4_dequantize(void* packed, void* scales_and_zeros, int group_size);

// ---- FP8-resident weights (quantized_moe.cu) ------------------------------------------------------------
// DeepSeek-V3's block-scaled FP8: E4M3 bytes as uint8 [(experts,) rows, k] (k a multiple of 8) with float32
// weight_scale_inv per 128×128 block, [(experts,) grid rows, ceil(k/128)], edge blocks partial. Every
// product uses the value e4m3 × scale rounded to bf16, the weight of the model dequantised to bf16.
//
// Routed experts, as dsn_int4_moe: gate/up [E, 2·inter, hidden] whose scale grid is the gate rows' then
// the up rows' ([E, 2·ceil(inter/128), ceil(hidden/128)]), down [E, hidden, inter]. bf16 [T, hidden].
DSN_API void* dsn_fp8_moe(void* hidden, void* slots, void* weights, void* gate_up, void* gate_up_scale_inv, void* down,
                          void* down_scale_inv);
// The weight (or stack) dequantised to bf16 [(experts,) rows, k] in one kernel; `split` > 0 names where a
// second scale grid starts (a gate/up stack: inter), 0 means one grid.
DSN_API void* dsn_fp8_dequantize(void* bytes, void* scale_inv, int64_t split);
// The same, ahead of its use: the kernel runs on a side stream (after the work already queued on the
// current one), so it overlaps what the current stream does meanwhile (a prefill's attention, bound by
// arithmetic, while this is bound by memory). `*ready` receives an event that dsn_stream_wait turns into
// the current stream's wait; make that wait before the result is read AND before it is freed (the
// scratch is the current stream's, reused in its order). NULL while the current stream is being
// captured into a graph, where the kernel runs on it in order.
DSN_API void* dsn_fp8_dequantize_ahead(void* bytes, void* scale_inv, int64_t split, void** ready);
// The current stream waits (on the device, not the host) for the work behind `ready`; frees the event. 0 on success.
DSN_API int dsn_stream_wait(void* ready);
// x bf16 [M, k] · Wᵀ → bf16 [M, rows]: up to 16 rows a warp per weight row reading its bytes once, more
// rows the weight dequantised (above) and multiplied by cuBLAS.
DSN_API void* dsn_fp8_linear(void* x, void* bytes, void* scale_inv);

// ---- NCCL process group ---------------------------------------------------------------------------
// c10d::ProcessGroupNCCL over a c10d::TCPStore rendezvous at host:port, which rank 0 serves (a new
// store each call, so a re-formed group never sees an old one's keys). Rank 0 publishes `generation`
// (>= 0) under the store key "generation"; the other ranks pass generation < 0 and read it (waiting up
// to `timeout_ms`). The group's keys live under the prefix "deepseek/ep/<generation>/". Blocks until
// every rank has joined or `timeout_ms` passes; `timeout_ms` is also the group's own collective timeout
// (its watchdog), so it must exceed every `wait_ms` below. Asynchronous NCCL errors abort the group's
// communicators without ending the process (TORCH_NCCL_ASYNC_ERROR_HANDLING=2 is set for it): a lost
// rank is a failed call here, never a crash. `device` < 0 keeps the current device. Returns the
// group, or NULL.
DSN_API void* dsn_process_group_create(const char* host, int port, int rank, int world_size, int device, int64_t timeout_ms,
                                       int64_t generation);
// The generation the group was formed under (rank 0's).
DSN_API int64_t dsn_process_group_generation(void* group);
// Every collective below: with wait_ms == 0 the current stream waits for it and the host does not;
// with wait_ms > 0 the host also blocks until it completes, and a collective not complete within
// wait_ms (a rank lost or stuck) fails. A failed collective aborts the group: every later call on it
// fails at once, and a new group must be formed. 0 on success.
//
// all-to-all of `input` into `output` (dim 0 split into world_size chunks, in rank order). With
// split_count 0 the chunks are equal; otherwise split_count == world_size row counts each.
DSN_API int dsn_process_group_all_to_all(void* group, void* output, void* input,
                                         const int64_t* output_splits, const int64_t* input_splits, int split_count, int64_t wait_ms);
// all-gather: `output` holds world_size copies of `input`'s shape along dim 0, in rank order.
DSN_API int dsn_process_group_all_gather(void* group, void* output, void* input, int64_t wait_ms);
// broadcast: `tensor` of rank `root` is copied into `tensor` of every other rank (same shape and dtype).
DSN_API int dsn_process_group_broadcast(void* group, void* tensor, int root, int64_t wait_ms);
// Aborts the communicators: collectives in flight end (with undefined results) instead of waiting for
// a rank that is gone. The group stays allocated and fails every later call; destroy it.
DSN_API void dsn_process_group_abort(void* group);
// Shuts the communicators down (or finishes the abort) and frees the group and its store.
DSN_API void dsn_process_group_destroy(void* group);

#ifdef __cplusplus
}
#endif
