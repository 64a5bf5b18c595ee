#!/usr/bin/env python3
"""gen_gallery.py - writes a realistic synthetic gallery of N models to stdout.

    bench/gen_gallery.py N [--seed S] [--invalid K] > gallery.json

About 800 bytes per model, with varied families, categories, languages, tags, ratings,
sizes, hardware and dates; some models lack optional fields or have them null. Every model
is valid unless --invalid K asks for K broken ones (spread evenly, each with one fault).
The output is deterministic for a given N and seed. Used by tests and benchmarks.
"""
import argparse
import datetime
import hashlib
import json
import random
import sys

FAMILIES = [
    ("llama", "Llama", "meta-llama", "llama3.1"), ("qwen", "Qwen", "Qwen", "apache-2.0"),
    ("mistral", "Mistral", "mistralai", "apache-2.0"), ("gemma", "Gemma", "google", "gemma"),
    ("phi", "Phi", "microsoft", "mit"), ("deepseek", "DeepSeek", "deepseek-ai", "deepseek"),
    ("smollm", "SmolLM", "HuggingFaceTB", "apache-2.0"), ("falcon", "Falcon", "tiiuae", "falcon"),
    ("yi", "Yi", "01-ai", "yi-license"), ("starcoder", "StarCoder", "bigcode", "bigcode-openrail-m"),
    ("mixtral", "Mixtral", "mistralai", "apache-2.0"), ("olmo", "OLMo", "allenai", "apache-2.0"),
    ("granite", "Granite", "ibm-granite", "apache-2.0"), ("nomic", "Nomic Embed", "nomic-ai", "apache-2.0"),
]
VARIANTS = ["instruct", "chat", "coder", "base", "vision", "embed", "math", "reasoning"]
CATEGORIES = {"instruct": ["chat", "general"], "chat": ["chat"], "coder": ["code", "chat"],
              "base": ["general"], "vision": ["vision", "multimodal"], "embed": ["embedding"],
              "math": ["math", "reasoning"], "reasoning": ["reasoning", "chat"]}
LANGUAGES = ["en", "zh", "de", "fr", "es", "it", "pt", "ja", "ko", "ru", "ar", "hi", "vi", "th"]
QUANTS = [("Q2_K", 0.33), ("Q3_K_M", 0.43), ("Q4_0", 0.53), ("Q4_K_S", 0.55), ("Q4_K_M", 0.58),
          ("Q5_K_M", 0.69), ("Q6_K", 0.80), ("Q8_0", 1.05), ("F16", 2.0)]
PARAMS = [0.5, 1.1, 1.5, 2, 3, 3.8, 7, 8, 9, 13, 14, 22, 27, 32, 34, 70]
CPUS = ["any x86-64 with AVX2", "4 cores", "8 cores", "Apple M1 or newer", "16 cores"]
GPUS = [None, "NVIDIA RTX 3060 12GB", "NVIDIA RTX 4090 24GB", "2x NVIDIA A100 80GB",
        "AMD RX 7900 XTX"]
WORDS = ("fast accurate multilingual assistant tuned for dialogue summarisation retrieval "
         "instruction following tool use long context code completion reasoning benchmarks "
         "quantized llama.cpp compatible lightweight offline private laptop edge server").split()


def model(i, rng):
    fam, fam_name, org, lic = FAMILIES[rng.randrange(len(FAMILIES))]
    variant = rng.choice(VARIANTS)
    params = rng.choice(PARAMS)
    quant, bytes_per_param = rng.choice(QUANTS)
    psize = ("%gb" % params).replace(".", "-")
    mid = "%s-%s-%s-%s-%05d" % (fam, psize, variant, quant.lower().replace("_", "-"), i)
    size_gb = round(params * bytes_per_param * rng.uniform(0.95, 1.08), 3)
    langs = ["en"] + rng.sample(LANGUAGES[1:], rng.randrange(0, 6))
    tags = [fam, quant.lower(), variant, "gguf"] + rng.sample(WORDS, rng.randrange(0, 3))
    desc = "%s %s %g B %s model: %s." % (fam_name, variant, params, quant,
                                         " ".join(rng.sample(WORDS, rng.randrange(14, 26))))
    day = datetime.date(2023, 1, 1) + datetime.timedelta(days=rng.randrange(0, 1000))
    m = {
        "id": mid,
        "name": "%s %gB %s (%s) #%d" % (fam_name, params, variant.capitalize(), quant, i),
        "categories": CATEGORIES[variant],
        "checksum": "sha256:" + hashlib.sha256(mid.encode()).hexdigest(),
        "downloadUrl": "https://huggingface.co/%s/%s-GGUF/resolve/main/%s.gguf" % (org, mid, mid),
        "languages": langs,
        "recommendedHardware": {"cpu": rng.choice(CPUS), "gpu": rng.choice(GPUS),
                                "ramGb": max(1, round(size_gb * 1.3 + 1)),
                                "vramGb": rng.choice([0, round(size_gb + 1)])},
        "parameters": "%gB" % params,
        "sizeGb": size_gb,
        "rating": round(rng.uniform(2.5, 5.0), 1),
        "license": lic,
        "description": desc,
        "tags": tags,
        "quantization": quant,
        "contextLength": rng.choice([2048, 4096, 8192, 32768, 131072]),
        "updatedAt": day.isoformat() + "T%02d:00:00Z" % rng.randrange(24),
    }
    # Some models leave optional fields out or null, as real galleries do.
    for key in ("rating", "recommendedHardware", "updatedAt", "tags", "languages",
                "license", "quantization", "contextLength", "description"):
        r = rng.random()
        if r < 0.06:
            del m[key]
        elif r < 0.10:
            m[key] = None
    if isinstance(m.get("recommendedHardware"), dict) and rng.random() < 0.1:
        m["recommendedHardware"]["vramGb"] = None
    return m


BREAKERS = [
    lambda m: m.update(checksum="md5:1234"), lambda m: m.update(sizeGb=0),
    lambda m: m.update(downloadUrl="ftp://example.com/x.gguf"), lambda m: m.update(rating=7),
    lambda m: m.update(id="../etc/passwd"), lambda m: m.update(name=""),
    lambda m: m.update(tags="not-a-list"), lambda m: m.pop("checksum"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--invalid", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    models = [model(i, rng) for i in range(a.n)]
    step = max(1, a.n // a.invalid) if a.invalid else 0
    for k in range(min(a.invalid, a.n)):
        BREAKERS[k % len(BREAKERS)](models[k * step])
    doc = {"version": "1", "generatedAt": "2026-01-01T00:00:00Z", "models": models}
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
