"""Child-process entry for llama.cpp calls, so that an abort inside llama.cpp fails one export
instead of killing the worker (or the test run):

    python -m core.export.llama_child quantize SOURCE.gguf OUT.gguf QUANTIZATION
    GRPO_STUDIO_PROMPT=... python -m core.export.llama_child generate MODEL.gguf [--lora L.gguf]

Prints one JSON line on stdout; llama.cpp's own log goes to stderr. Exit status 1 on failure.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from typing import Any

FTYPES = {"f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
          "q6_k": "MOSTLY_Q6_K", "q5_k_m": "MOSTLY_Q5_K_M", "q4_k_m": "MOSTLY_Q4_K_M",
          "q4_0": "MOSTLY_Q4_0", "q3_k_m": "MOSTLY_Q3_K_M"}


def quantize(source: str, out: str, quantization: str) -> dict[str, Any]:
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{FTYPES[quantization]}")
    params.nthread = os.cpu_count() or 1
    code = llama_cpp.llama_model_quantize(source.encode(), out.encode(), ctypes.byref(params))
    if code != 0:
        print(f"error: llama_model_quantize returned {code}", file=sys.stderr)
        raise SystemExit(1)
    return {"quantized": quantization}


def generate(model: str, prompt: str, lora: str | None, max_tokens: int) -> dict[str, Any]:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=model, lora_path=lora, n_ctx=1024, verbose=False,
                          n_threads=os.cpu_count() or 1)
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
    return {"text": out["choices"][0]["text"], "n_tokens": out["usage"]["completion_tokens"],
            "prompt_tokens": tokens, "chat_template": llm.metadata.get("tokenizer.chat_template")}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.export.llama_child")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize")
    q.add_argument("source")
    q.add_argument("out")
    q.add_argument("quantization", choices=sorted(FTYPES))
    g = sub.add_parser("generate")
    g.add_argument("model")
    g.add_argument("--lora")
    g.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    if args.command == "quantize":
        result = quantize(args.source, args.out, args.quantization)
    else:
        result = generate(args.model, os.environ["GRPO_STUDIO_PROMPT"], args.lora,
                          args.max_tokens)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
