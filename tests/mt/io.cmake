# Tests of the engine's I/O part (src/mt/io): config reader, checkpoint
# readers, tokenizer shim, plus the fuzz targets of every model-file parser.
# Fixtures: tests/fixtures/mtio (scripts/fixtures/make-io-fixtures.py) and,
# when present, the lead's tests/fixtures/mt (torch-written checkpoints, HF
# tokenizer references).
if(TARGET nllb)
  stts_add_test(test_mt_io_config SOURCES test_mt_io_config.c LIBS nllb LABELS mt)
  stts_add_test(test_mt_io_safetensors SOURCES test_mt_io_safetensors.c LIBS nllb LABELS mt)
  stts_add_test(test_mt_io_tokenizer SOURCES test_mt_io_tokenizer.c LIBS nllb LABELS mt)
  stts_add_test(test_mt_io_torch SOURCES test_mt_io_torch.c LIBS nllb LABELS mt)
  # converted model files: round trip, parity, bad files, rename rule (~10 s)
  stts_add_test(test_mt_io_gguf SOURCES test_mt_io_gguf.c LIBS nllb LABELS mt)
  # scripts/fetch-model against a mock hub on localhost (Python stdlib, ~1 s).
  stts_add_test_command(test_mt_io_fetch_model COMMAND python3 ${CMAKE_SOURCE_DIR}/scripts/fixtures/check-fetch-model.py
                        LABELS mt)
  stts_add_fuzzer(fuzz_safetensors SOURCES fuzz_safetensors.c LIBS nllb)
  stts_add_fuzzer(fuzz_torch_zip SOURCES fuzz_torch_zip.c LIBS nllb)
  stts_add_fuzzer(fuzz_mt_config SOURCES fuzz_mt_config.c LIBS nllb)
  stts_add_fuzzer(fuzz_gguf SOURCES fuzz_gguf.c LIBS nllb)
  stts_add_fuzzer(fuzz_shortlist SOURCES fuzz_shortlist.c LIBS nllb)   # --shortlist FILE
endif()
# `stream-tts convert` end to end (shell, ~35 s CPU): translate parity through
# --model (ids and scores of the HF directory for every --weights on 500
# sentences, and HF transformers references), exit codes
# and messages for bad flags, missing and truncated input.
if(TARGET nllb AND TARGET stream-tts)
  add_test(NAME test_mt_convert_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/check-convert-cli.sh
           $<TARGET_FILE:stream-tts> ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_mt_convert_cli PROPERTIES LABELS mt SKIP_RETURN_CODE 77)
  # The flag contracts shared by translate, the main command and bench_nllb
  # (device fallback line, --threads range, config file errors, STTS_SIMD,
  # NUL input; ~3 s). Labelled cuda too: in a CUDA build it checks the
  # default device's fallback line with the GPUs hidden.
  add_test(NAME test_cli_contracts COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/check-cli-contracts.sh
           $<TARGET_FILE:stream-tts> ${CMAKE_SOURCE_DIR}
           $<$<TARGET_EXISTS:bench_nllb>:$<TARGET_FILE:bench_nllb>>)
  set_tests_properties(test_cli_contracts PROPERTIES LABELS "mt;cli;cuda" SKIP_RETURN_CODE 77)
endif()
