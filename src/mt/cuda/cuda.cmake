# The CUDA backend (-DSTTS_CUDA=ON): kernels and the mt_backend on the GPU,
# built for sm_90 (Hopper; STTS_CUDA_ARCHS) into its own static library, linked into nllb.
# The CUDA runtime is static (CMAKE_CUDA_RUNTIME_LIBRARY Static): binaries
# need only the driver's libcuda at run time, loaded when a GPU is asked
# for. The project's C warning flags are not nvcc options, so this target
# sets its own.
add_library(nllb_cuda STATIC
  ${CMAKE_CURRENT_LIST_DIR}/kernels.cu
  ${CMAKE_CURRENT_LIST_DIR}/program.cu
  ${CMAKE_CURRENT_LIST_DIR}/cuda_backend.cu)
set_property(TARGET nllb_cuda PROPERTY COMPILE_OPTIONS "")
set_target_properties(nllb_cuda PROPERTIES
  CUDA_ARCHITECTURES "${STTS_CUDA_ARCHS}"
  CUDA_RUNTIME_LIBRARY Static
  CUDA_STANDARD 17
  POSITION_INDEPENDENT_CODE ON)
target_compile_options(nllb_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --Werror=all-warnings -lineinfo>)
target_include_directories(nllb_cuda PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_CURRENT_LIST_DIR}/..)
find_package(CUDAToolkit REQUIRED)
# nllb_cuda uses the engine's quant.c and dtype names: a cycle of static
# libraries, which CMake resolves by repeating them on the link line.
target_link_libraries(nllb_cuda PUBLIC stts_common CUDA::cudart_static nllb)
