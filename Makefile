# Thin wrapper around CMake; the real build lives in CMakeLists.txt.
BUILD ?= build
.PHONY: all test clean
all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$$(nproc)
test: all
	ctest --test-dir $(BUILD) --output-on-failure -j$$(nproc)
clean:
	rm -rf $(BUILD)
