// NCCL collectives for expert parallelism through c10d's ProcessGroupNCCL, with the TCPStore
// rendezvous that torch.distributed uses (rank 0 serves the store). TorchSharp has no
// torch.distributed; these are the two collectives that dispatch and combine routed tokens need.
#include "deepseek_native.h"
#include "native_error.h"

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <string>
#include <vector>

using deepseek_native::guarded;

namespace {

struct ProcessGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> group;
  int world_size;
};

at::Tensor& tensor(void* handle, const char* name) {
  TORCH_CHECK(handle != nullptr, name, " is null");
  return *static_cast<at::Tensor*>(handle);
}

}  // namespace

extern "C" void* dsn_process_group_create(const char* host, int port, int rank, int world_size, int device, int64_t timeout_ms) {
  return guarded<void*>(nullptr, [&] {
    TORCH_CHECK(host != nullptr && *host != '\0', "the store host is empty");
    TORCH_CHECK(port > 0 && port < 65536, "store port ", port, " is out of range");
    TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank ", rank, " is not in a world of ", world_size);
    TORCH_CHECK(timeout_ms > 0, "the timeout must be positive");
    if (device >= 0) c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));

    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(port);
    store_options.isServer = rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(world_size);
    store_options.waitWorkers = true;
    store_options.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), store_options);

    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = std::chrono::milliseconds(timeout_ms);
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
    return static_cast<void*>(new ProcessGroup{store, group, world_size});
  });
}

extern "C" int dsn_process_group_all_to_all(void* handle, void* output, void* input,
                                            const int64_t* output_splits, const int64_t* input_splits, int split_count) {
  return guarded<int>(1, [&] {
    TORCH_CHECK(handle != nullptr, "the process group is null");
    auto* pg = static_cast<ProcessGroup*>(handle);
    TORCH_CHECK(split_count == 0 || split_count == pg->world_size, "split_count ", split_count,
                " must be 0 (equal chunks) or the world size ", pg->world_size);
    std::vector<int64_t> out_splits, in_splits;
    if (split_count > 0) {
      TORCH_CHECK(output_splits != nullptr && input_splits != nullptr, "split sizes are null");
      out_splits.assign(output_splits, output_splits + split_count);
      in_splits.assign(input_splits, input_splits + split_count);
    }
    auto work = pg->group->alltoall_base(tensor(output, "output"), tensor(input, "input"), out_splits, in_splits);
    work->wait();  // the current stream waits for the NCCL stream; the host does not block
    return 0;
  });
}

extern "C" int dsn_process_group_all_gather(void* handle, void* output, void* input) {
  return guarded<int>(1, [&] {
    TORCH_CHECK(handle != nullptr, "the process group is null");
    auto* pg = static_cast<ProcessGroup*>(handle);
    auto work = pg->group->_allgather_base(tensor(output, "output"), tensor(input, "input"));
    work->wait();
    return 0;
  });
}

extern "C" void dsn_process_group_destroy(void* handle) {
  auto* pg = static_cast<ProcessGroup*>(handle);
  if (pg == nullptr) return;
  guarded<int>(1, [&] {
    pg->group->shutdown();
    return 0;
  });
  guarded<int>(1, [&] {
    delete pg;
    return 0;
  });
}
