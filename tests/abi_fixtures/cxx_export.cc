// A C++ function with a mangled name, exported by the version script (C++ leaks into the ABI).
__attribute__((visibility("default"))) int phot_cxx_helper(int x) { return x * 2; }
