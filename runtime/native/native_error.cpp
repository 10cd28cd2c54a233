#include "deepseek_native.h"
#include "native_error.h"

namespace {
thread_local std::string last_error;
}

namespace deepseek_native {
void set_last_error(std::string message) { last_error = std::move(message); }
}  // namespace deepseek_native

extern "C" int dsn_abi_version(void) { return DSN_ABI_VERSION; }

extern "C" const char* dsn_last_error(void) { return last_error.c_str(); }
