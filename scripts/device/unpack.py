#!/usr/bin/env python3
"""unpack.py ARCHIVE DEST - extracts a carry archive made by cuda-prepare.sh
(.device/cuda.tar.xz) on the GPU machine, which has Python but no Debian
packages (no xz binary for tar). The archive exists because a device call
carries 64 MiB in all: the working tree (~31 MB, the demo model included)
plus the uncompressed binaries (~41 MB) no longer fit; xz halves them."""
import sys
import tarfile

with tarfile.open(sys.argv[1]) as t:
    t.extractall(sys.argv[2])
