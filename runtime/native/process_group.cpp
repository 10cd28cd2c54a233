// NCCL collectives for expert parallelism through c10d's ProcessGroupNCCL, with the TCPStore
// rendezvous that torch.distributed uses (rank 0 serves the store). TorchSharp has no
// torch.distributed; these are the collectives that the leader's per-layer exchange needs: a small
// header broadcast, the all-to-all of routed rows both ways, and an all-gather to compare the ranks'
// configuration when a group forms.
#include "deepseek_native.h"
#include "native_error.h"

#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

using deepseek_native::guarded;

namespace {

constexpr const char* kGenerationKey = "generation";

struct ProcessGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> group;
  int world_size;
  c10::DeviceIndex device;
  int64_t generation;
  std::atomic<bool> aborted{false};
};

at::Tensor& tensor(void* handle, const char* name) {
  TORCH_CHECK(handle != nullptr, name, " is null");
  return *static_cast<at::Tensor*>(handle);
}

ProcessGroup& usable(void* handle) {
  TORCH_CHECK(handle != nullptr, "the process group is null");
  auto* pg = static_cast<ProcessGroup*>(handle);
  TORCH_CHECK(!pg->aborted.load(), "the NCCL group was aborted after an earlier failure; form a new one");
  return *pg;
}

void abort_group(ProcessGroup& pg) {
  if (pg.aborted.exchange(true)) return;
  try {
    pg.group->abort();
  } catch (...) {
    // The communicators may already be aborted by the failed wait; the group is unusable either way.
  }
}

// Issues `collective` on the group's device and waits as wait_ms says; any failure aborts the group
// (NCCL's state after a timed-out or failed collective is undefined) and is rethrown.
template <typename Collective>
int run(ProcessGroup& pg, int64_t wait_ms, Collective&& collective) {
  TORCH_CHECK(wait_ms >= 0, "wait_ms must be 0 or more");
  c10::cuda::CUDAGuard guard(pg.device);
  try {
    auto work = collective(*pg.group);
    // 0: the current stream waits for the NCCL stream, the host does not. > 0: the host blocks until
    // the collective completes; c10d throws when it does not complete in time.
    work->wait(std::chrono::milliseconds(wait_ms));
    return 0;
  } catch (...) {
    abort_group(pg);
    throw;
  }
}

}  // namespace

extern "C" void* dsn_process_group_create(const char* host, int port, int rank, int world_size, int device, int64_t timeout_ms,
                                          int64_t generation) {
  return guarded<void*>(nullptr, [&] {
    TORCH_CHECK(host != nullptr && *host != '\0', "the store host is empty");
    TORCH_CHECK(port > 0 && port < 65536, "store port ", port, " is out of range");
    TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank ", rank, " is not in a world of ", world_size);
    TORCH_CHECK(timeout_ms > 0, "the timeout must be positive");
    TORCH_CHECK(rank != 0 || generation >= 0, "rank 0 chooses the generation; it must be 0 or more");
    if (device >= 0) c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    auto device_index = c10::cuda::current_device();
    // A lost rank must fail the collective that needed it, not end this process (c10d's default for
    // asynchronous NCCL errors): abort the communicators and keep going. Read by the constructor below.
    setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2", 1);

    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(port);
    store_options.isServer = rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(world_size);
    store_options.waitWorkers = true;
    store_options.timeout = std::chrono::milliseconds(timeout_ms);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), store_options);
    if (rank == 0) {
      auto text = std::to_string(generation);
      tcp->set(kGenerationKey, std::vector<uint8_t>(text.begin(), text.end()));
    } else {
      auto bytes = tcp->get(kGenerationKey);  // waits for rank 0, up to the store's timeout
      generation = std::stoll(std::string(bytes.begin(), bytes.end()));
    }
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::PrefixStore>("deepseek/ep/" + std::to_string(generation), tcp);

    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = std::chrono::milliseconds(timeout_ms);
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
    auto* pg = new ProcessGroup();
    pg->store = tcp;
    pg->group = group;
    pg->world_size = world_size;
    pg->device = device_index;
    pg->generation = generation;
    return static_cast<void*>(pg);
  });
}

extern "C" int64_t dsn_process_group_generation(void* handle) {
  return handle == nullptr ? -1 : static_cast<ProcessGroup*>(handle)->generation;
}

extern "C" int dsn_process_group_all_to_all(void* handle, void* output, void* input,
                                            const int64_t* output_splits, const int64_t* input_splits, int split_count, int64_t wait_ms) {
  return guarded<int>(1, [&] {
    auto& pg = usable(handle);
    TORCH_CHECK(split_count == 0 || split_count == pg.world_size, "split_count ", split_count,
                " must be 0 (equal chunks) or the world size ", pg.world_size);
    std::vector<int64_t> out_splits, in_splits;
    if (split_count > 0) {
      TORCH_CHECK(output_splits != nullptr && input_splits != nullptr, "split sizes are null");
      out_splits.assign(output_splits, output_splits + split_count);
      in_splits.assign(input_splits, input_splits + split_count);
    }
    auto& out = tensor(output, "output");
    auto& in = tensor(input, "input");
    return run(pg, wait_ms, [&](c10d::ProcessGroupNCCL& group) { return group.alltoall_base(out, in, out_splits, in_splits); });
  });
}

extern "C" int dsn_process_group_all_gather(void* handle, void* output, void* input, int64_t wait_ms) {
  return guarded<int>(1, [&] {
    auto& pg = usable(handle);
    auto& out = tensor(output, "output");
    auto& in = tensor(input, "input");
    return run(pg, wait_ms, [&](c10d::ProcessGroupNCCL& group) { return group._allgather_base(out, in); });
  });
}

extern "C" int dsn_process_group_broadcast(void* handle, void* target, int root, int64_t wait_ms) {
  return guarded<int>(1, [&] {
    auto& pg = usable(handle);
    TORCH_CHECK(root >= 0 && root < pg.world_size, "root ", root, " is not a rank of a world of ", pg.world_size);
    std::vector<at::Tensor> tensors{tensor(target, "tensor")};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.rootTensor = 0;
    return run(pg, wait_ms, [&](c10d::ProcessGroupNCCL& group) { return group.broadcast(tensors, options); });
  });
}

extern "C" void dsn_process_group_abort(void* handle) {
  if (handle == nullptr) return;
  abort_group(*static_cast<ProcessGroup*>(handle));
}

extern "C" void dsn_process_group_destroy(void* handle) {
  auto* pg = static_cast<ProcessGroup*>(handle);
  if (pg == nullptr) return;
  guarded<int>(1, [&] {
    // An aborted group has nothing left to shut down; shutting down waits for work in flight.
    if (!pg->aborted.load()) pg->group->shutdown();
    return 0;
  });
  guarded<int>(1, [&] {
    delete pg;
    return 0;
  });
}
