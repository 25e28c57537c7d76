#!/usr/bin/env bash
# pipeline-prepare.sh [DEST] - builds bench_pipeline with the CUDA backend
# here (nvcc, sm_90) and packs what one GPU-machine call of
# pipeline-check.sh needs into DEST/pack.tar.xz: the binary, every Debian
# .so it links but the C/C++ runtime (the GPU machine has no packages),
# the built-in terms dictionary,
# Open JTalk's naist-jdic dictionary (103 MB, 16 MB packed: a call carries
# 64 MiB with the tracked files) and the voice (../shared does not travel).
# DEST defaults to /work/main/.device/pipeline (.device/ is git-ignored). Then:
#   run command="bash scripts/device/pipeline-check.sh" carry=[".device/pipeline"] timeout_s=600
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-/work/main/.device/pipeline}
B=build-cuda
DICT=${STTS_NAIST_JDIC:-/var/lib/mecab/dic/open-jtalk/naist-jdic}
export PATH=/usr/local/cuda/bin:$PATH
nice cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DSTTS_WERROR=ON -DSTTS_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DSTTS_CUDA_ARCHS=90-real >/dev/null
nice cmake --build $B -j2 --target bench_pipeline stts_user_dict
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/p/bin" "$T/p/lib" "$T/p/dict" "$T/p/voice" "$T/p/share/stream-tts/dict"
cp $B/bench/bench_pipeline "$T/p/bin/"
strip --strip-debug "$T/p/bin/bench_pipeline"
ldd $B/bench/bench_pipeline | awk '/=> \//{print $3}' | sort -u |
  grep -vE '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r so; do cp -L "$so" "$T/p/lib/"; done
cp "$DICT"/* "$T/p/dict/"
# the built-in terms dictionary where an installed copy keeps it (bin/../share)
cp $B/data/stts-terms.dic "$T/p/share/stream-tts/dict/"
cp ../shared/assets/voices/mei_normal.htsvoice "$T/p/voice/"
rm -rf "$DEST" && mkdir -p "$DEST"
tar cf - -C "$T" p | xz -T2 -6 >"$DEST/pack.tar.xz"
du -sh "$DEST"
