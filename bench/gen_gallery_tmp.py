#!/usr/bin/env python3
"""gen_gallery_tmp.py - stand-in N-model gallery generator for gallery_bench.sh, used only
while bench/gen_gallery.py does not exist. Deterministic; about 800 bytes per model.

    python3 bench/gen_gallery_tmp.py N > gallery.json
"""
import json
import random
import sys

CATS = ["chat", "code", "general", "reasoning", "multilingual", "embedding", "vision", "speech"]
LANGS = ["en", "de", "fr", "es", "it", "pt", "zh", "ja", "ko", "ru", "ar", "hi"]
QUANTS = ["Q4_K_M", "Q5_K_M", "Q8_0", "Q3_K_S", "F16", "IQ4_XS"]
LICS = ["apache-2.0", "mit", "llama3.1", "gemma", "cc-by-4.0", "other"]
FAMS = ["Llama", "Qwen", "Mistral", "Gemma", "Phi", "Falcon", "Yi", "DeepSeek", "Granite"]
WORDS = ("fast small large instruct tuned helpful assistant local private offline quantized "
         "context reasoning coding math tools agent summarise translate").split()


def model(i, rnd):
    fam = rnd.choice(FAMS)
    size_b = rnd.choice([0.5, 1, 1.5, 3, 7, 8, 13, 14, 27, 32, 70])
    quant = rnd.choice(QUANTS)
    mid = f"{fam.lower()}-{size_b:g}b-m{i:06d}-{quant.lower()}"
    m = {
        "id": mid,
        "name": f"{fam} {size_b:g}B Model {i} ({quant})",
        "categories": rnd.sample(CATS, rnd.randint(1, 3)),
        "checksum": "sha256:" + "%064x" % rnd.getrandbits(256),
        "downloadUrl": f"https://example.org/models/{mid}/resolve/main/{mid}.gguf",
        "languages": rnd.sample(LANGS, rnd.randint(1, 4)),
        "recommendedHardware": {"cpu": rnd.choice(["x86_64 AVX2", "arm64"]),
                                "gpu": rnd.choice([None, "any CUDA", "Apple M-series"]),
                                "ramGb": rnd.choice([2, 4, 8, 16, 32, 64]),
                                "vramGb": rnd.choice([0, 4, 6, 8, 12, 24])},
        "parameters": f"{size_b:g}B",
        "sizeGb": round(size_b * rnd.uniform(0.45, 1.1), 2) or 0.1,
        "rating": round(rnd.uniform(0, 5), 1),
        "license": rnd.choice(LICS),
        "description": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(12, 30))).capitalize() + ".",
        "tags": rnd.sample(WORDS, rnd.randint(2, 5)),
        "quantization": quant,
        "contextLength": rnd.choice([2048, 4096, 8192, 32768, 131072]),
        "updatedAt": f"202{rnd.randint(3, 5)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                     f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00Z",
    }
    if rnd.random() < 0.05:
        del m["rating"]
    return m


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rnd = random.Random(42)
    doc = {"version": "bench-1", "generatedAt": "2025-01-01T00:00:00Z",
           "models": [model(i, rnd) for i in range(n)]}
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
