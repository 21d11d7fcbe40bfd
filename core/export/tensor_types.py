"""What a GGUF file really holds, read with `gguf.GGUFReader`, against what was asked for.

llama.cpp's mixes (q4_k_m: Q4_K with Q6_K for some tensors, ...) give each weight matrix a type,
and a k-quant needs rows that are a multiple of 256 values: a matrix whose rows are not gets
llama.cpp's documented fallback (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q3_K -> IQ4_NL, and F16
when even that does not fit). SmolLM2-135M (576-wide rows) is such a model: its q4_k_m file is
mostly Q5_0, with Q4_K/Q6_K only in the 1536-wide ffn_down matrices.

Guarantees: `check_tensor_types` passes only when the file's `general.file_type` is the requested
one, every weight matrix has a type of the requested mix or the fallback its row width forces, and
at least one matrix has the requested main type; otherwise it raises TensorTypeMismatch saying
what was found. Does not: delete files (the runner does).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from core.export.request import ExportError

# quantization -> (main type, types its llama.cpp mix may give a weight matrix)
MIXES = {
    "f16": ("F16", {"F16"}),
    "bf16": ("BF16", {"BF16"}),
    "q8_0": ("Q8_0", {"Q8_0"}),
    "q6_k": ("Q6_K", {"Q6_K", "Q8_0"}),
    "q5_k_m": ("Q5_K", {"Q5_K", "Q6_K", "Q8_0"}),
    "q4_k_m": ("Q4_K", {"Q4_K", "Q5_K", "Q6_K", "Q8_0"}),
    "q4_0": ("Q4_0", {"Q4_0", "Q4_1", "Q6_K", "Q8_0"}),
    "q3_k_m": ("Q3_K", {"Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0"}),
}
FILE_TYPES = {"f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
              "q6_k": "MOSTLY_Q6_K", "q5_k_m": "MOSTLY_Q5_K_M", "q4_k_m": "MOSTLY_Q4_K_M",
              "q4_0": "MOSTLY_Q4_0", "q3_k_m": "MOSTLY_Q3_K_M"}
# llama.cpp (llama-quant.cpp) when a row is not a multiple of the type's block
FALLBACKS = {"Q2_K": "IQ4_NL", "Q3_K": "IQ4_NL", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


class TensorTypeMismatch(ExportError):
    pass


def block_size(type_name: str) -> int:
    import gguf
    return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]][0]


def allowed_types(quantization: str, row: int) -> set[str]:
    """Types llama.cpp may give a matrix with rows of `row` values under `quantization`."""
    allowed = set()
    for kind in MIXES[quantization][1]:
        if row % block_size(kind) == 0:
            allowed.add(kind)
        elif kind in FALLBACKS and row % block_size(FALLBACKS[kind]) == 0:
            allowed.add(FALLBACKS[kind])
        else:
            allowed |= {"F16", "F32"}
    return allowed


def read_tensors(path: Path) -> tuple[list[tuple[str, str, list[int]]], dict[str, Any]]:
    """[(name, type, shape)] (shape[0] is the row width) and the metadata fields."""
    import gguf
    reader = gguf.GGUFReader(path)
    tensors = [(t.name, t.tensor_type.name, [int(n) for n in t.shape]) for t in reader.tensors]
    fields = {}
    for name, field in reader.fields.items():
        if not name.startswith("GGUF.") and not name.startswith("tokenizer.ggml."):
            try:
                fields[name] = field.contents()
            except Exception:  # noqa: BLE001 - a field we cannot decode is not needed here
                continue
    return tensors, fields


def file_type_name(fields: dict[str, Any]) -> str | None:
    import gguf
    value = fields.get("general.file_type")
    try:
        return gguf.LlamaFileType(int(value)).name if value is not None else None
    except ValueError:
        return str(value)


def check_tensor_types(path: Path, quantization: str) -> dict[str, Any]:
    """{"tensor_types": {type: count}, "file_type", "fallback_tensors"} or TensorTypeMismatch."""
    tensors, fields = read_tensors(path)
    counts = Counter(kind for _, kind, _ in tensors)
    main, mix = MIXES[quantization]
    matrices = [(name, kind, shape) for name, kind, shape in tensors if len(shape) >= 2]
    wrong = [(name, kind, shape[0]) for name, kind, shape in matrices
             if kind not in allowed_types(quantization, shape[0])]
    file_type = file_type_name(fields)
    found = ", ".join(f"{k} x{n}" for k, n in counts.most_common())
    if file_type != FILE_TYPES[quantization]:
        raise TensorTypeMismatch(f"{path.name} says it is {file_type}, not "
                                 f"{FILE_TYPES[quantization]} (tensors: {found})")
    if wrong:
        name, kind, row = wrong[0]
        raise TensorTypeMismatch(f"{path.name} is not {quantization}: {len(wrong)} weight "
                                 f"matrices have other types, e.g. {name} is {kind} (rows of "
                                 f"{row}); tensors: {found}")
    if counts[main] == 0:
        widths = sorted({shape[0] for _, _, shape in matrices})
        raise TensorTypeMismatch(
            f"{quantization} cannot be produced for this model: {main} needs rows that are a "
            f"multiple of {block_size(main)} values and this model's are "
            f"{', '.join(map(str, widths))} wide, so llama.cpp fell back to other types for "
            f"every matrix ({found}); choose q8_0, q4_0, f16 or bf16")
    fallback = sum(1 for _, kind, shape in matrices
                   if kind not in {k for k in mix if shape[0] % block_size(k) == 0})
    return {"tensor_types": dict(counts.most_common()), "file_type": file_type,
            "fallback_tensors": fallback}
