# Thin wrapper around CMake; the real build lives in CMakeLists.txt.
BUILD ?= build
PREFIX ?= /usr/local
.PHONY: all test install clean
all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$$(nproc)
test: all
	ctest --test-dir $(BUILD) --output-on-failure -j$$(nproc)
install: all
	cmake --install $(BUILD) --prefix $(PREFIX)
clean:
	rm -rf $(BUILD)
