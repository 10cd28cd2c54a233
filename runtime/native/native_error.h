// Per-thread last error and the guard that keeps C++ exceptions inside the C ABI.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace deepseek_native {

void set_last_error(std::string message);

// Runs `body`; a thrown exception becomes the thread's last error and `failure` is returned.
template <typename Result, typename Body>
Result guarded(Result failure, Body&& body) noexcept {
  try {
    return body();
  } catch (const c10::Error& e) {
    set_last_error(e.what_without_backtrace());
  } catch (const std::exception& e) {
    set_last_error(e.what());
  } catch (...) {
    set_last_error("unknown C++ exception");
  }
  return failure;
}

}  // namespace deepseek_native
