// How tensors cross the C ABI: a handle is TorchSharp's at::Tensor*. Arguments are borrowed (checked
// for null, named in the message); a result is a new at::Tensor* the caller owns.
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace deepseek_native {

inline const at::Tensor& tensor(void* handle, const char* name) {
  TORCH_CHECK(handle != nullptr, name, " is null");
  return *static_cast<at::Tensor*>(handle);
}

inline void* owned(at::Tensor result) { return new at::Tensor(std::move(result)); }

}  // namespace deepseek_native
