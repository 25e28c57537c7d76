# Engine core tests (model, kernels, search, parity with HF transformers).
# test_nllb_model needs no files (random in-memory model, naive reference);
# test_nllb_parity runs on tests/fixtures/mt (made by
# scripts/fixtures/make-mt-fixtures.py) and skips when they are absent.
if(TARGET nllb)
  stts_add_test(test_nllb_model SOURCES test_nllb_model.c LIBS nllb m LABELS mt)
  # every backend op x weight format x SIMD level against a double reference
  stts_add_test(test_backend_ops SOURCES test_backend_ops.c LIBS nllb m LABELS mt)
  pkg_check_modules(NLLB_TEST_JANSSON REQUIRED IMPORTED_TARGET jansson)
  stts_add_test(test_nllb_parity SOURCES test_nllb_parity.c LIBS nllb PkgConfig::NLLB_TEST_JANSSON m LABELS mt)
endif()
if(TARGET nllb AND TARGET stream-tts)
  stts_add_test(test_nllb_cli SOURCES test_nllb_cli.c LIBS PkgConfig::NLLB_TEST_JANSSON LABELS mt)
  add_dependencies(test_nllb_cli stream-tts)
endif()
if(TARGET nllb)
  # parity on the trained demo model (real sentences; see the file's header)
  stts_add_test(test_nllb_demo SOURCES test_nllb_demo.c LIBS nllb PkgConfig::NLLB_TEST_JANSSON LABELS mt)
  # int8 / bf16 weights and the auto shortlist against HF's f32 outputs (docs/QUALITY.md)
  stts_add_test(test_weights_quality SOURCES test_weights_quality.c LIBS nllb PkgConfig::NLLB_TEST_JANSSON m
                LABELS mt)
endif()
if(TARGET nllb-quant-error)
  # bf16 / int8 / f16 logits against f32 at teacher-forced positions (tools/nllb-check/nllb-quant-error.c)
  stts_add_test_command(test_quant_error COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/check-quant-error.py
                        $<TARGET_FILE:nllb-quant-error> ${CMAKE_SOURCE_DIR}/models/demo-en-ja LABELS mt)
endif()
if(STTS_BENCH)
  # bench_nllb --json keeps the keys the engine-speed issue names (tests outside the project read them);
  # the target is defined later (bench/), which $<TARGET_FILE> resolves
  stts_add_test_command(test_bench_nllb_json COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/check-bench-json.py
                        $<TARGET_FILE:bench_nllb> LABELS mt TIMEOUT 300)
endif()
