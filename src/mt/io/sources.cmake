# The engine's I/O part (owned by src/mt/io): config.json reader, checkpoint
# readers (safetensors, sharded safetensors, pytorch_model.bin zip+pickle,
# model.gguf) and the converter that writes model.gguf (stream-tts convert),
# the SentencePiece tokenizer shim (the engine's only C++) and the language
# table. Included by src/mt/CMakeLists.txt; paths relative to src/mt.
pkg_check_modules(NLLB_IO_DEPS REQUIRED IMPORTED_TARGET jansson sentencepiece zlib)
set(NLLB_IO_SOURCES
  io/io_util.c
  io/config.c
  io/checkpoint.c
  io/safetensors.c
  io/gguf.c
  io/convert.c
  io/torch_zip.c
  io/pickle.c
  io/tensor_convert.c
  io/lang_codes.c
  io/lang_index.c
  io/tokenizer.cc)
set(NLLB_IO_LIBS PkgConfig::NLLB_IO_DEPS)
