// CUDA graph capture and replay of work that TorchSharp issues on the calling thread.
//
// While a capture is open, a CUDAStreamGuard makes a side stream the thread's current stream, so the
// ATen ops TorchSharp dispatches are recorded instead of run; tensors they allocate come from the
// graph's private pool and stay valid for replays. The decode step that is captured must have static
// shapes and must not synchronise with the host.
#include "deepseek_native.h"
#include "native_error.h"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

using deepseek_native::guarded;

namespace {

struct GraphPool {
  at::cuda::MempoolId_t id;
};

struct Graph {
  at::cuda::CUDAGraph graph;
  std::optional<c10::cuda::CUDAStreamGuard> capture_stream;
  bool capturing = false;
};

}  // namespace

extern "C" void* dsn_graph_pool_create(void) {
  return guarded<void*>(nullptr, [] { return static_cast<void*>(new GraphPool{at::cuda::graph_pool_handle()}); });
}

extern "C" void dsn_graph_pool_destroy(void* pool) { delete static_cast<GraphPool*>(pool); }

extern "C" void* dsn_graph_capture_begin(void* pool, int device) {
  return guarded<void*>(nullptr, [&] {
    const auto index = device < 0 ? c10::cuda::current_device() : static_cast<c10::DeviceIndex>(device);
    c10::cuda::set_device(index);
    const auto previous = c10::cuda::getCurrentCUDAStream(index);
    const auto stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
    // Work queued before the capture (inputs being filled) must finish before the captured work starts.
    at::cuda::CUDAEvent ready;
    ready.record(previous);
    ready.block(stream);
    // As torch.cuda.graph does: nothing in flight may race the capture's first allocations.
    c10::cuda::device_synchronize();

    auto graph = std::make_unique<Graph>();
    graph->capture_stream.emplace(stream);
    const auto pool_id = pool ? static_cast<GraphPool*>(pool)->id : at::cuda::MempoolId_t{0, 0};
    try {
      graph->graph.capture_begin(pool_id);
    } catch (...) {
      graph->capture_stream.reset();
      throw;
    }
    graph->capturing = true;
    return static_cast<void*>(graph.release());
  });
}

extern "C" int dsn_graph_capture_end(void* handle) {
  auto* graph = static_cast<Graph*>(handle);
  return guarded<int>(1, [&] {
    TORCH_CHECK(graph != nullptr && graph->capturing, "dsn_graph_capture_end: no capture in progress on this graph");
    graph->capturing = false;
    try {
      graph->graph.capture_end();
    } catch (...) {
      graph->capture_stream.reset();
      throw;
    }
    graph->capture_stream.reset();
    return 0;
  });
}

extern "C" int dsn_graph_replay(void* handle) {
  auto* graph = static_cast<Graph*>(handle);
  return guarded<int>(1, [&] {
    TORCH_CHECK(graph != nullptr && !graph->capturing, "dsn_graph_replay: the graph is still capturing or was not captured");
    graph->graph.replay();
    return 0;
  });
}

extern "C" void dsn_graph_destroy(void* handle) {
  auto* graph = static_cast<Graph*>(handle);
  if (graph == nullptr) return;
  if (graph->capturing) {
    // A failure inside the captured work: end the (invalidated) capture so the stream is usable again.
    guarded<int>(1, [&] {
      graph->graph.capture_end();
      return 0;
    });
    graph->capture_stream.reset();
  }
  guarded<int>(1, [&] {
    delete graph;
    return 0;
  });
}
