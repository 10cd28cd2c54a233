// Routed experts and projections held quantised (int4 groups, FP8 blocks) computed by the helper's own
// kernels (moe_kernels.cuh, over the formats of weight_formats.cuh).
//
// Experts: LibTorch's int4 and FP8 products multiply one weight per call, so routed experts through them
// need each expert's token count on the host; here the expert of each pick is read on the device, so a
// decode step with quantised experts can be captured as a CUDA graph. A batch with no more picks than
// held experts takes a block per pick (two kernels: gate/up with SwiGLU, then down with the weighted sum
// of each token's picks); a larger one sorts its picks by expert on the device and takes a block per
// expert, which reads the expert's rows once for all its picks (gate/up, down, then the weighted sum).
// A token's picks are summed in a fixed order, so results do not depend on timing.
//
// FP8 on tensor cores (tensor_core_tiles.cuh): a projection of several rows, and the experts of a batch
// with more picks than experts, take tiles that dequantise each weight byte once in shared memory for all
// their rows. One row of a projection takes a warp per weight row reading the row's bytes once (no
// tensor-core shape is one row wide); many rows dequantise the weight to bf16 and multiply with cuBLAS,
// whose tuned kernels win once the product is bound by arithmetic rather than by reading the weight.
// DEEPSEEK_FP8_KERNELS (auto, cuda-cores, tensor-cores, dequantize) forces one way, for benchmarks.
#include "deepseek_native.h"
#include "moe_kernels.cuh"
#include "native_error.h"
#include "tensor_handles.h"
#include "tensor_core_tiles.cuh"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>

using deepseek_native::guarded;
using deepseek_native::tensor;
using deepseek_native::Fp8Rows;
using deepseek_native::Int4Rows;
namespace kernels = deepseek_native::moe;
namespace tiles = deepseek_native::tiles;

namespace {

// Which FP8 kernels run: auto picks by shape; the others force one family where it applies (benchmarks).
enum class Fp8Kernels { Auto, CudaCores, TensorCores, Dequantize };

Fp8Kernels fp8_kernels() {
  static const Fp8Kernels chosen = [] {
    const char* value = std::getenv("DEEPSEEK_FP8_KERNELS");
    if (value == nullptr || *value == 0 || std::strcmp(value, "auto") == 0) return Fp8Kernels::Auto;
    if (std::strcmp(value, "cuda-cores") == 0) return Fp8Kernels::CudaCores;
    if (std::strcmp(value, "tensor-cores") == 0) return Fp8Kernels::TensorCores;
    if (std::strcmp(value, "dequantize") == 0) return Fp8Kernels::Dequantize;
    TORCH_CHECK(false, "DEEPSEEK_FP8_KERNELS is '", value, "'; it takes auto, cuda-cores, tensor-cores or dequantize");
  }();
  return chosen;
}


unsigned blocks(int64_t n, int64_t per_block) { return static_cast<unsigned>((n + per_block - 1) / per_block); }

const __nv_bfloat16* bf16(const at::Tensor& t) { return reinterpret_cast<const __nv_bfloat16*>(t.data_ptr()); }
__nv_bfloat16* bf16_out(at::Tensor& t) { return reinterpret_cast<__nv_bfloat16*>(t.data_ptr()); }
const __nv_bfloat162* pairs(const at::Tensor& t) { return reinterpret_cast<const __nv_bfloat162*>(t.data_ptr()); }

// Dynamic shared memory beyond the default 48 KiB must be allowed per kernel, once: the first call of
// a shape runs eagerly before any capture (warm-up), so the attribute is never set while capturing.
// Kept per kernel address (instantiations of one template share a type, not an attribute).
template <typename Kernel>
int shared_bytes(Kernel* kernel, int64_t bytes) {
  static std::mutex mutex;
  static std::unordered_map<const void*, int64_t> allowed;
  TORCH_CHECK(bytes <= 200 * 1024, "a kernel needs ", bytes, " bytes of shared memory; at most 200 KiB are supported");
  if (bytes > 48 * 1024) {
    const std::lock_guard<std::mutex> lock(mutex);
    auto& current = allowed[reinterpret_cast<const void*>(kernel)];
    if (bytes > current) {
      C10_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
      current = bytes;
    }
  }
  return static_cast<int>(bytes);
}

// bf16 [tokens, hidden] on CUDA, contiguous and 16-byte aligned (the kernels read rows 16 bytes at a time;
// a view that starts mid-vector is copied first).
at::Tensor rows_of(void* handle, const char* name) {
  auto x = tensor(handle, name).contiguous();
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == at::kBFloat16 && x.dim() == 2, name, " must be bf16 [rows, features] on CUDA");
  TORCH_CHECK(x.size(1) % deepseek_native::kValuesPerLane == 0, name, "'s width ", x.size(1), " is not a multiple of ", deepseek_native::kValuesPerLane);
  if (reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 != 0) x = x.clone();
  return x;
}

// Tiles of kTileM picks (16, 32 or 64: the smallest that holds an expert's average run) through one
// expert stack: product[pick] = bf16(input row of the pick · the expert's rows ᵀ).
template <int kTileM>
void launch_expert_rows(const at::Tensor& source, int divisor, const at::Tensor& sorted_slots, const at::Tensor& sorted_picks, int64_t picks, int64_t held,
                        const Fp8Rows& w, at::Tensor& product, cudaStream_t stream) {
  auto* kernel = tiles::expert_rows<kTileM>;
  const auto runs = static_cast<unsigned>(std::min(picks, held));
  kernel<<<dim3(blocks(w.rows, tiles::kTileN), runs), tiles::kThreads, shared_bytes(kernel, tiles::Layout<kTileM>::kBytes), stream>>>(
      bf16(source), divisor, sorted_slots.data_ptr<int64_t>(), sorted_picks.data_ptr<int64_t>(), static_cast<int>(picks), held, w, bf16_out(product));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void expert_tiles(int64_t run_length, const at::Tensor& source, int divisor, const at::Tensor& sorted_slots, const at::Tensor& sorted_picks, int64_t picks,
                 int64_t held, const Fp8Rows& w, at::Tensor& product, cudaStream_t stream) {
  if (run_length <= 16) launch_expert_rows<16>(source, divisor, sorted_slots, sorted_picks, picks, held, w, product, stream);
  else if (run_length <= 32) launch_expert_rows<32>(source, divisor, sorted_slots, sorted_picks, picks, held, w, product, stream);
  else launch_expert_rows<64>(source, divisor, sorted_slots, sorted_picks, picks, held, w, product, stream);
}

// Σ_k weights[t,k] · down_{slot}(silu(gate_{slot}(x)) · up_{slot}(x)) for either format.
template <typename Weights>
at::Tensor routed_experts(const at::Tensor& hidden, const at::Tensor& slots, const at::Tensor& weights_in, const Weights& gate_up, const Weights& down,
                          int64_t held) {
  TORCH_CHECK(slots.scalar_type() == at::kLong && slots.dim() == 2 && slots.size(0) == hidden.size(0), "slots must be int64 [tokens, k]");
  const int64_t tokens = hidden.size(0), hidden_size = hidden.size(1), top_k = slots.size(1), inter = down.k;
  TORCH_CHECK(gate_up.k == hidden_size && gate_up.rows == 2 * inter && down.rows == hidden_size, "the expert stacks do not match hidden ", hidden_size);
  const c10::cuda::CUDAGuard guard(hidden.device());
  auto stream = at::cuda::getCurrentCUDAStream();
  const auto slots_c = slots.contiguous();
  const auto weights = weights_in.to(at::kFloat).contiguous();
  TORCH_CHECK(weights.sizes() == slots.sizes(), "weights must be [tokens, k] like slots");
  auto output = at::empty({tokens, hidden_size}, hidden.options());
  if (tokens == 0) return output;
  if (held == 0) return output.zero_();  // every pick is computed elsewhere
  const int k = static_cast<int>(top_k), i = static_cast<int>(inter);
  // Rows of picks computed elsewhere are left unwritten and never read.
  const int64_t picks = tokens * top_k;
  auto activated = at::empty({picks, inter}, hidden.options());
  constexpr bool fp8 = std::is_same_v<Weights, Fp8Rows>;
  const Fp8Kernels choice = fp8 ? fp8_kernels() : Fp8Kernels::CudaCores;
  // (the tiles need whole 16-byte chunks of a row, and a warp's 16 rows on one side of the gate/up split)
  const bool tensor_cores = fp8 && hidden_size % 16 == 0 && inter % 16 == 0 &&
                            (choice == Fp8Kernels::TensorCores || (choice == Fp8Kernels::Auto && picks > held));
  if (picks <= held && !tensor_cores) {  // about one pick per expert at most: a block per pick (measured faster up to 8 tokens of V2-Lite)
    auto* gate_up_kernel = kernels::gate_up_per_pick<Weights>;
    gate_up_kernel<<<dim3(blocks(inter, kernels::kWarpsPerBlock), static_cast<unsigned>(picks)), kernels::kThreads,
                     shared_bytes(gate_up_kernel, hidden_size * 2), stream>>>(bf16(hidden), slots_c.data_ptr<int64_t>(), k, held, gate_up, i,
                                                                              bf16_out(activated));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    auto* down_kernel = kernels::down_per_pick<Weights>;
    down_kernel<<<dim3(blocks(hidden_size, kernels::kWarpsPerBlock), static_cast<unsigned>(tokens)), kernels::kThreads,
                  shared_bytes(down_kernel, top_k * inter * 2), stream>>>(bf16(activated), slots_c.data_ptr<int64_t>(), weights.data_ptr<float>(), k,
                                                                        held, down, bf16_out(output));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return output;
  }
  // More picks than experts: the picks sorted by expert (stable, so an expert's picks stay in token
  // order), a block per expert reading its rows once for all its picks.
  const auto [sorted_slots, sorted_picks] = at::sort(slots_c.view({picks}), /*stable=*/true, 0, /*descending=*/false);
  auto products = at::empty({picks, hidden_size}, hidden.options());
  if constexpr (fp8) {
    if (tensor_cores) {  // gate/up products, SwiGLU, down products, then the same weighted sum
      const int64_t run_length = (picks + held - 1) / held;
      auto gate_up_products = at::empty({picks, 2 * inter}, hidden.options());
      expert_tiles(run_length, hidden, k, sorted_slots, sorted_picks, picks, held, gate_up, gate_up_products, stream);
      tiles::swiglu<<<dim3(blocks(inter, kernels::kThreads), static_cast<unsigned>(picks)), kernels::kThreads, 0, stream>>>(
          bf16(gate_up_products), slots_c.data_ptr<int64_t>(), held, i, bf16_out(activated));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      expert_tiles(run_length, activated, 1, sorted_slots, sorted_picks, picks, held, down, products, stream);
      kernels::combine_picks<<<dim3(blocks(hidden_size, kernels::kThreads), static_cast<unsigned>(tokens)), kernels::kThreads, 0, stream>>>(
          bf16(products), slots_c.data_ptr<int64_t>(), weights.data_ptr<float>(), k, held, static_cast<int>(hidden_size), bf16_out(output));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return output;
    }
  }
  const auto runs = static_cast<unsigned>(std::min(picks, held));  // blocks per row range: see kernels::run_of_block
  auto* gate_up_kernel = kernels::gate_up_per_expert<Weights>;
  gate_up_kernel<<<dim3(blocks(inter, kernels::kWarpsPerBlock), runs), kernels::kThreads,
                   shared_bytes(gate_up_kernel, kernels::kPairsPerPass * hidden_size * 2), stream>>>(
      bf16(hidden), sorted_slots.data_ptr<int64_t>(), sorted_picks.data_ptr<int64_t>(), static_cast<int>(picks), k, held, gate_up, i, bf16_out(activated));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto* down_kernel = kernels::down_per_expert<Weights>;
  down_kernel<<<dim3(blocks(hidden_size, kernels::kWarpsPerBlock), runs), kernels::kThreads,
                shared_bytes(down_kernel, kernels::kPairsPerPass * inter * 2), stream>>>(
      bf16(activated), sorted_slots.data_ptr<int64_t>(), sorted_picks.data_ptr<int64_t>(), static_cast<int>(picks), held, down, bf16_out(products));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  kernels::combine_picks<<<dim3(blocks(hidden_size, kernels::kThreads), static_cast<unsigned>(tokens)), kernels::kThreads, 0, stream>>>(
      bf16(products), slots_c.data_ptr<int64_t>(), weights.data_ptr<float>(), k, held, static_cast<int>(hidden_size), bf16_out(output));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

template <typename Weights>
at::Tensor empty_dequantized(const Weights& weights, int64_t experts, const at::Tensor& like, bool stacked) {
  return stacked ? at::empty({experts, weights.rows, weights.k}, like.options().dtype(at::kBFloat16))
                 : at::empty({weights.rows, weights.k}, like.options().dtype(at::kBFloat16));
}

template <typename Weights>
void dequantize_into(const Weights& weights, int64_t experts, at::Tensor& output, cudaStream_t stream) {
  if (weights.rows == 0 || experts == 0) return;
  kernels::dequantize<<<dim3(blocks(weights.rows, kernels::kWarpsPerBlock), static_cast<unsigned>(experts)), kernels::kThreads, 0, stream>>>(
      weights, bf16_out(output));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename Weights>
at::Tensor dequantized(const Weights& weights, int64_t experts, const at::Tensor& like, bool stacked) {
  const c10::cuda::CUDAGuard guard(like.device());
  auto output = empty_dequantized(weights, experts, like, stacked);
  dequantize_into(weights, experts, output, at::cuda::getCurrentCUDAStream());
  return output;
}

// ---- int4 ---------------------------------------------------------------------------------------------

void check_int4_width(int64_t k, int group_size, const char* what) {
  TORCH_CHECK(group_size % deepseek_native::kValuesPerLane == 0, "the int4 group size must be a multiple of ", deepseek_native::kValuesPerLane, ", not ",
              group_size);
  TORCH_CHECK(k % group_size == 0, what, " ", k, " is not a multiple of the group size ", group_size);
}

// uint8 [experts, rows, k/2] with bf16 [experts, k/group, rows, 2] (or one weight without the experts dimension).
Int4Rows int4_rows(const at::Tensor& packed, const at::Tensor& sz, int group_size, const char* name) {
  const bool stacked = packed.dim() == 3;
  TORCH_CHECK(packed.is_cuda() && packed.scalar_type() == at::kByte && (stacked || packed.dim() == 2) && packed.is_contiguous(), name,
              " must be contiguous uint8 [(experts,) rows, k/2] on CUDA");
  const int64_t experts = stacked ? packed.size(0) : 1, rows = packed.size(-2), k = packed.size(-1) * 2;
  check_int4_width(k, group_size, name);
  const auto expected = stacked ? std::vector<int64_t>{experts, k / group_size, rows, 2} : std::vector<int64_t>{k / group_size, rows, 2};
  TORCH_CHECK(sz.scalar_type() == at::kBFloat16 && sz.is_contiguous() && sz.sizes() == at::IntArrayRef(expected), name,
              "'s scales and zeros must be contiguous bf16 [(experts,) k/group, rows, 2]");
  return Int4Rows{packed.data_ptr<uint8_t>(), pairs(sz), group_size, rows, static_cast<int>(k)};
}

// ---- FP8 ----------------------------------------------------------------------------------------------

// E4M3 bytes [(experts,) rows, k] with float32 weight_scale_inv [(experts,) grid rows, ceil(k/128)], the grid
// of rows [0, split) then that of rows [split, rows) (split == rows: one grid).
Fp8Rows fp8_rows(const at::Tensor& bytes, const at::Tensor& scale_inv, int64_t split, const char* name) {
  const bool stacked = bytes.dim() == 3;
  TORCH_CHECK(bytes.is_cuda() && bytes.scalar_type() == at::kByte && (stacked || bytes.dim() == 2) && bytes.is_contiguous(), name,
              " must be contiguous uint8 (E4M3) [(experts,) rows, k] on CUDA");
  const int64_t experts = stacked ? bytes.size(0) : 1, rows = bytes.size(-2), k = bytes.size(-1);
  TORCH_CHECK(k % deepseek_native::kValuesPerLane == 0, name, "'s width ", k, " is not a multiple of ", deepseek_native::kValuesPerLane);
  TORCH_CHECK(split > 0 && split <= rows, name, ": split ", split, " is outside (0, ", rows, "]");
  const int64_t block = Fp8Rows::kBlock;
  const int64_t grid_rows = (split + block - 1) / block + (rows - split + block - 1) / block, k_blocks = (k + block - 1) / block;
  const auto expected = stacked ? std::vector<int64_t>{experts, grid_rows, k_blocks} : std::vector<int64_t>{grid_rows, k_blocks};
  TORCH_CHECK(scale_inv.scalar_type() == at::kFloat && scale_inv.is_contiguous() && scale_inv.sizes() == at::IntArrayRef(expected), name,
              "'s weight_scale_inv must be contiguous float32 ", at::IntArrayRef(expected), ", not ", scale_inv.sizes());
  TORCH_CHECK(scale_inv.device() == bytes.device(), name, "'s scales are on another device");
  return Fp8Rows{bytes.data_ptr<uint8_t>(), scale_inv.data_ptr<float>(), rows, static_cast<int>(k), split, grid_rows};
}

// Rows of activations up to which a projection takes the CUDA-core row kernels (cuda-cores) or the
// tensor-core tiles (auto, from two rows) rather than dequantise + cuBLAS: where each was faster on an
// H100 (bench native --sections fp8, docs/benchmarks.md).
constexpr int64_t kFp8RowKernelMaxRows = 16;
constexpr int64_t kFp8TileMaxRows = 16;

// Zeroed per-tile counters of split projections, one array per device, made on the first call (the
// warm-up before any capture) and kept for the process: every call leaves them at zero.
constexpr int64_t kSplitCounters = 1 << 16;

unsigned* split_counters(int device) {
  static std::mutex mutex;
  static std::unordered_map<int, unsigned*> counters;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = counters[device];
  if (slot == nullptr) {
    C10_CUDA_CHECK(cudaMalloc(&slot, kSplitCounters * sizeof(unsigned)));
    C10_CUDA_CHECK(cudaMemset(slot, 0, kSplitCounters * sizeof(unsigned)));
  }
  return slot;
}

// Blocks of `kernel` an SM holds at once (registers and shared memory), asked once per kernel.
template <typename Kernel>
int resident_blocks(Kernel* kernel, int threads, int shared) {
  static std::mutex mutex;
  static std::unordered_map<const void*, int> known;
  const std::lock_guard<std::mutex> lock(mutex);
  auto [at, added] = known.try_emplace(reinterpret_cast<const void*>(kernel), 0);
  if (added) C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&at->second, kernel, threads, shared));
  return std::max(at->second, 1);
}

// x · Wᵀ on tensor cores: tiles of 16, 32 or 64 rows, split over k until the blocks fill every SM to
// its resident limit once (decode's few rows give a tile per 128 weight rows only; fewer, longer splits
// measured slower on an H100: a block streams the weight slower than the SM can, docs/benchmarks.md).
template <int kTileM>
void linear_tiles(const at::Tensor& x, const Fp8Rows& w, at::Tensor& output, cudaStream_t stream) {
  const int64_t m = x.size(0);
  const int64_t row_tiles = (w.rows + tiles::kTileN - 1) / tiles::kTileN, m_tiles = (m + kTileM - 1) / kTileM, tile_count = row_tiles * m_tiles;
  const int k_tiles = (w.k + tiles::kTileK - 1) / tiles::kTileK;
  auto* kernel = tiles::linear<kTileM>;
  const int shared = shared_bytes(kernel, tiles::Layout<kTileM>::kBytes);
  const int64_t room = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * resident_blocks(kernel, tiles::kThreads, shared);
  const int64_t wanted = tile_count > kSplitCounters ? 1 : std::clamp<int64_t>(room / tile_count, 1, k_tiles);
  const int per_split = static_cast<int>((k_tiles + wanted - 1) / wanted);
  const int splits = (k_tiles + per_split - 1) / per_split;
  at::Tensor partial;
  if (splits > 1) partial = at::empty({splits, m, w.rows}, x.options().dtype(at::kFloat));
  kernel<<<dim3(static_cast<unsigned>(row_tiles), static_cast<unsigned>(m_tiles), static_cast<unsigned>(splits)), tiles::kThreads, shared, stream>>>(
      bf16(x), static_cast<int>(m), w, per_split, splits > 1 ? partial.data_ptr<float>() : nullptr,
      splits > 1 ? split_counters(x.get_device()) : nullptr, bf16_out(output));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// A few rows on CUDA cores: one row keeps four loads of the weight in flight per lane; more take up to 8
// rows per pass over the weight, staged in shared memory where they fit in the default 48 KiB.
void linear_rows(const at::Tensor& x, const Fp8Rows& w, at::Tensor& output, cudaStream_t stream) {
  const int64_t m = x.size(0);
  const dim3 grid_rows(blocks(w.rows, kernels::kWarpsPerBlock));
  if (m == 1) {
    const int64_t staged = w.k * 2;
    const bool stage = staged <= 48 * 1024;
    kernels::linear_rows<1><<<grid_rows, kernels::kThreads, stage ? staged : 0, stream>>>(bf16(x), 1, w, stage, bf16_out(output));
  } else {
    const int64_t staged = kernels::kPairsPerPass * w.k * 2;
    const bool stage = staged <= 48 * 1024;
    kernels::linear_rows<kernels::kPairsPerPass><<<dim3(grid_rows.x, blocks(m, kernels::kPairsPerPass)), kernels::kThreads, stage ? staged : 0, stream>>>(
        bf16(x), static_cast<int>(m), w, stage, bf16_out(output));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

extern "C" void* dsn_int4_moe(void* hidden_h, void* slots_h, void* weights_h, void* gate_up_packed_h, void* gate_up_scales_h,
                              void* down_packed_h, void* down_scales_h, int group_size) {
  return guarded<void*>(nullptr, [&] {
    const auto hidden = rows_of(hidden_h, "hidden");
    const auto& gate_up = tensor(gate_up_packed_h, "gate_up_packed");
    const auto& down = tensor(down_packed_h, "down_packed");
    TORCH_CHECK(gate_up.dim() == 3 && down.dim() == 3 && down.size(0) == gate_up.size(0), "the int4 stacks must be [experts, rows, k/2]");
    const auto gate_up_rows = int4_rows(gate_up, tensor(gate_up_scales_h, "gate_up_scales"), group_size, "gate_up_packed");
    const auto down_rows = int4_rows(down, tensor(down_scales_h, "down_scales"), group_size, "down_packed");
    return new at::Tensor(routed_experts(hidden, tensor(slots_h, "slots"), tensor(weights_h, "weights"), gate_up_rows, down_rows, gate_up.size(0)));
  });
}

extern "C" void* dsn_int4_dequantize(void* packed_h, void* scales_h, int group_size) {
  return guarded<void*>(nullptr, [&] {
    const auto& packed = tensor(packed_h, "packed");
    TORCH_CHECK(packed.dim() == 2, "packed must be uint8 [N, K/2]");
    return new at::Tensor(dequantized(int4_rows(packed, tensor(scales_h, "scales_and_zeros"), group_size, "packed"), 1, packed, false));
  });
}

extern "C" void* dsn_fp8_moe(void* hidden_h, void* slots_h, void* weights_h, void* gate_up_h, void* gate_up_scale_inv_h, void* down_h,
                             void* down_scale_inv_h) {
  return guarded<void*>(nullptr, [&] {
    const auto hidden = rows_of(hidden_h, "hidden");
    const auto& gate_up = tensor(gate_up_h, "gate_up");
    const auto& down = tensor(down_h, "down");
    TORCH_CHECK(gate_up.dim() == 3 && down.dim() == 3 && down.size(0) == gate_up.size(0) && gate_up.size(1) % 2 == 0,
                "the FP8 stacks must be [experts, 2·inter, hidden] and [experts, hidden, inter]");
    const auto gate_up_rows = fp8_rows(gate_up, tensor(gate_up_scale_inv_h, "gate_up_scale_inv"), gate_up.size(1) / 2, "gate_up");
    const auto down_rows = fp8_rows(down, tensor(down_scale_inv_h, "down_scale_inv"), down.size(1), "down");
    return new at::Tensor(routed_experts(hidden, tensor(slots_h, "slots"), tensor(weights_h, "weights"), gate_up_rows, down_rows, gate_up.size(0)));
  });
}

extern "C" void* dsn_fp8_dequantize(void* bytes_h, void* scale_inv_h, int64_t split) {
  return guarded<void*>(nullptr, [&] {
    const auto& bytes = tensor(bytes_h, "bytes");
    const auto weights = fp8_rows(bytes, tensor(scale_inv_h, "scale_inv"), split > 0 ? split : bytes.size(-2), "bytes");
    const bool stacked = bytes.dim() == 3;
    return new at::Tensor(dequantized(weights, stacked ? bytes.size(0) : 1, bytes, stacked));
  });
}

extern "C" void* dsn_fp8_dequantize_ahead(void* bytes_h, void* scale_inv_h, int64_t split, void** ready) {
  return guarded<void*>(nullptr, [&] {
    TORCH_CHECK(ready != nullptr, "ready must point to where the event goes");
    *ready = nullptr;
    const auto& bytes = tensor(bytes_h, "bytes");
    const auto weights = fp8_rows(bytes, tensor(scale_inv_h, "scale_inv"), split > 0 ? split : bytes.size(-2), "bytes");
    const bool stacked = bytes.dim() == 3;
    const int64_t experts = stacked ? bytes.size(0) : 1;
    const c10::cuda::CUDAGuard guard(bytes.device());
    const auto current = at::cuda::getCurrentCUDAStream();
    auto output = empty_dequantized(weights, experts, bytes, stacked);
    if (c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
      // Inside a graph capture the order is the graph's: no side stream, nothing to wait for.
      dequantize_into(weights, experts, output, current.stream());
      return new at::Tensor(std::move(output));
    }
    const auto side = at::cuda::getStreamFromPool(false, bytes.device().index());
    // The scratch comes from the current stream's pool, where a block is free once the work queued before
    // it has run: the side stream starts after that work. No recordStream: the current stream waits for the
    // side stream before the scratch goes back to the pool (dsn_stream_wait, which the caller makes before
    // freeing it), so the pool's stream order stays safe, and a freed scratch is reused at once instead of
    // after the side stream's event is seen complete, which the host, queueing layers ahead of the device,
    // would see late: every layer would then take a new scratch (3 GB more at an 8-layer V2-Lite prefill).
    at::cuda::CUDAEvent queued;
    queued.record(current);
    queued.block(side);
    dequantize_into(weights, experts, output, side.stream());
    auto done = std::make_unique<at::cuda::CUDAEvent>();
    done->record(side);
    *ready = done.release();
    return new at::Tensor(std::move(output));
  });
}

extern "C" int dsn_stream_wait(void* ready) {
  return guarded<int>(-1, [&] {
    TORCH_CHECK(ready != nullptr, "no event to wait for");
    std::unique_ptr<at::cuda::CUDAEvent> event(static_cast<at::cuda::CUDAEvent*>(ready));
    event->block(at::cuda::getCurrentCUDAStream());
    return 0;
  });
}

extern "C" void* dsn_fp8_linear(void* x_h, void* bytes_h, void* scale_inv_h) {
  return guarded<void*>(nullptr, [&] {
    const auto x = rows_of(x_h, "x");
    const auto& bytes = tensor(bytes_h, "bytes");
    TORCH_CHECK(bytes.dim() == 2, "bytes must be uint8 [N, K]");
    const auto weights = fp8_rows(bytes, tensor(scale_inv_h, "scale_inv"), bytes.size(0), "bytes");
    TORCH_CHECK(x.size(1) == weights.k, "x has ", x.size(1), " features; the weight takes ", weights.k);
    TORCH_CHECK(x.device() == bytes.device(), "x and the weight are on different devices");
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t m = x.size(0);
    const bool tiles_fit = weights.k % 16 == 0;  // whole 16-byte chunks of a row
    enum class Way { Rows, Tiles, Dequantize };
    Way way;
    switch (fp8_kernels()) {
      case Fp8Kernels::CudaCores: way = m <= kFp8RowKernelMaxRows ? Way::Rows : Way::Dequantize; break;
      case Fp8Kernels::TensorCores: way = tiles_fit ? Way::Tiles : Way::Dequantize; break;
      case Fp8Kernels::Dequantize: way = Way::Dequantize; break;
      default: way = m == 1 ? Way::Rows : m <= kFp8TileMaxRows ? (tiles_fit ? Way::Tiles : Way::Rows) : Way::Dequantize;
    }
    if (way == Way::Dequantize) return new at::Tensor(at::matmul(x, dequantized(weights, 1, bytes, false).t()));
    auto output = at::empty({m, weights.rows}, x.options());
    if (m == 0 || weights.rows == 0) return new at::Tensor(std::move(output));
    auto stream = at::cuda::getCurrentCUDAStream();
    if (way == Way::Rows) linear_rows(x, weights, output, stream);
    else if (m <= 16) linear_tiles<16>(x, weights, output, stream);
    else if (m <= 32) linear_tiles<32>(x, weights, output, stream);
    else linear_tiles<64>(x, weights, output, stream);
    return new at::Tensor(std::move(output));
  });
}
