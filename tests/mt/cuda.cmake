# CUDA backend tests (-DSTTS_CUDA=ON): kernels against references and GPU ids
# against CPU ids on the fixture models; exit 77 (skipped) without a GPU.
if(STTS_CUDA AND TARGET nllb)
  pkg_check_modules(NLLB_CUDA_TEST_JANSSON REQUIRED IMPORTED_TARGET jansson)
  stts_add_test(test_cuda SOURCES test_cuda.c LIBS nllb PkgConfig::NLLB_CUDA_TEST_JANSSON m LABELS "mt;cuda")
endif()
