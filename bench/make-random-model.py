#!/usr/bin/env python3
"""make-random-model.py - writes an NLLB-200-distilled-600M-shaped model folder
(config.json from ../shared/nllb, the demo model's SentencePiece file, a
model.safetensors of f32 weights in HF's names) for measuring `stream-tts translate`'s
load time and peak resident memory at full size without the real weights
(docs/PERFORMANCE.md). The values are a small repeated pseudo-random block:
the translations are meaningless, the bytes and shapes are real. Python 3 stdlib.

  bench/make-random-model.py OUT_DIR [--shared ../shared] [--dtype f32|f16]"""
import argparse
import json
import os
import random
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tensors(c):
    d, V, fe, fd = c["d_model"], c["vocab_size"], c["encoder_ffn_dim"], c["decoder_ffn_dim"]
    yield "model.shared.weight", [V, d]
    def attn(p):
        for x in ("q_proj", "k_proj", "v_proj", "out_proj"):
            yield f"{p}.{x}.weight", [d, d]
            yield f"{p}.{x}.bias", [d]
    def ln(p):
        yield f"{p}.weight", [d]
        yield f"{p}.bias", [d]
    for i in range(c["encoder_layers"]):
        p = f"model.encoder.layers.{i}"
        yield from attn(p + ".self_attn")
        yield from ln(p + ".self_attn_layer_norm")
        yield f"{p}.fc1.weight", [fe, d]
        yield f"{p}.fc1.bias", [fe]
        yield f"{p}.fc2.weight", [d, fe]
        yield f"{p}.fc2.bias", [d]
        yield from ln(p + ".final_layer_norm")
    yield from ln("model.encoder.layer_norm")
    for i in range(c["decoder_layers"]):
        p = f"model.decoder.layers.{i}"
        yield from attn(p + ".self_attn")
        yield from ln(p + ".self_attn_layer_norm")
        yield from attn(p + ".encoder_attn")
        yield from ln(p + ".encoder_attn_layer_norm")
        yield f"{p}.fc1.weight", [fd, d]
        yield f"{p}.fc1.bias", [fd]
        yield f"{p}.fc2.weight", [d, fd]
        yield f"{p}.fc2.bias", [d]
        yield from ln(p + ".final_layer_norm")
    yield from ln("model.decoder.layer_norm")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    a = ap.parse_args()
    with open(os.path.join(a.shared, "nllb", "nllb-200-distilled-600M.config.json")) as f:
        c = json.load(f)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f)
    shutil.copy(os.path.join(HERE, "..", "models", "demo-en-ja", "sentencepiece.bpe.model"), a.out)
    es = 4 if a.dtype == "f32" else 2
    header, off, order = {}, 0, list(tensors(c))
    for name, shape in order:
        n = 1
        for s in shape:
            n *= s
        header[name] = {"dtype": "F32" if a.dtype == "f32" else "F16", "shape": shape, "data_offsets": [off, off + n * es]}
        off += n * es
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    rnd = random.Random(1)
    fmt = "<%d%s" % (1 << 20, "f" if a.dtype == "f32" else "e")
    block = struct.pack(fmt, *[rnd.uniform(-0.0346, 0.0346) for _ in range(1 << 20)])
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        left = off
        while left > 0:
            k = min(left, len(block))
            f.write(block[:k])
            left -= k
    print(f"make-random-model: {len(order)} tensors, {off / 1e9:.2f} GB of {a.dtype} weights in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
