# The engine's core part (owned by src/mt core): public API, model build and
# load, forward pass, search, and the CPU backend (thread pool + SIMD kernels
# with run-time dispatch). Included by src/mt/CMakeLists.txt; paths relative
# to src/mt. A CUDA backend adds its files here under STTS_CUDA.
set(NLLB_CORE_SOURCES
  api.c
  quant.c
  model.c
  forward.c
  search.c
  shortlist.c
  cpu/cpu_backend.c
  cpu/kernels.c
  cpu/select.c
  cpu/threadpool.c)
find_library(NLLB_LIBM m)
set(NLLB_CORE_LIBS Threads::Threads)
if(NLLB_LIBM)
  list(APPEND NLLB_CORE_LIBS ${NLLB_LIBM})
endif()
if(STTS_CUDA)
  include(${CMAKE_CURRENT_LIST_DIR}/cuda/cuda.cmake)
  list(APPEND NLLB_CORE_LIBS nllb_cuda)
else()
  list(APPEND NLLB_CORE_SOURCES cuda/cuda_stub.c)
endif()
# The hot loops are optimised in every build type: Debug/sanitizer builds of
# the tests would otherwise spend minutes in -O0 SIMD intrinsics.
set_source_files_properties(cpu/kernels.c cpu/cpu_backend.c cpu/select.c search.c PROPERTIES COMPILE_OPTIONS "-O2")
# No implicit fused multiply-adds in the kernels: the scalar and vector
# epilogues (kernels.c) must round the same way on every level; FMAs that
# the code asks for by intrinsic are unaffected.
set_source_files_properties(cpu/kernels.c PROPERTIES COMPILE_OPTIONS "-O2;-ffp-contract=off")
