"""Fetch llama.cpp's GGUF converters from the llama-cpp-python source distribution on PyPI.

    python tools/fetch_converter.py [TARGET]     default: .cache/llama.cpp-<installed version>/

The export engine (core/export/) runs `convert_hf_to_gguf.py` and `convert_lora_to_gguf.py` with the
gguf-py bundled beside them, the same llama.cpp revision as the installed `llama_cpp` quantizer.
Only the files the two scripts need are kept: the scripts, the `conversion/` package they import,
`gguf-py/`, the chat templates some architectures read (`models/templates/`) and the licence.

Guarantees: the target appears whole or not at all (extracted beside it, then renamed); the sdist
comes through pip (`pip download`, which reuses pip's cache), never by hand. Does not: install the
optional packages some architectures need (sentencepiece, mistral-common); our models do not.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "llama-cpp-python"
# paths inside vendor/llama.cpp/ that the converters import or read
KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/",
        "models/templates/", "LICENSE")
MARKER = ".complete"


def default_target() -> Path:
    return REPO / ".cache" / f"llama.cpp-{version('llama_cpp_python')}"


def download_sdist(pkg_version: str, folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", f"{PACKAGE}=={pkg_version}",
                    "--no-deps", "--no-binary", ":all:", "--quiet", "-d", str(folder)],
                   check=True)
    found = list(folder.glob("*.tar.gz"))
    if len(found) != 1:
        raise SystemExit(f"expected one source archive in {folder}, found {found}")
    return found[0]


def extract_converter(sdist: Path, target: Path) -> int:
    """Copy the KEEP paths of vendor/llama.cpp/ into `target`; the number of files."""
    count = 0
    with tarfile.open(sdist) as tar:
        for member in tar:
            parts = member.name.split("/", 1)
            inner = parts[1] if len(parts) == 2 else ""
            if not inner.startswith("vendor/llama.cpp/") or not member.isfile():
                continue
            rel = inner[len("vendor/llama.cpp/"):]
            if not any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in KEEP):
                continue
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, dest.open("wb") as out:  # type: ignore[union-attr]
                shutil.copyfileobj(src, out)
            count += 1
    return count


def fetch(target: Path) -> Path:
    if (target / MARKER).is_file():
        return target
    pkg_version = target.name.rsplit("-", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        sdist = download_sdist(pkg_version, Path(work) / "sdist")
        staged = Path(work) / "converter"
        count = extract_converter(sdist, staged)
        missing = [k for k in KEEP if not (staged / k.rstrip("/")).exists()]
        if missing:
            raise SystemExit(f"{sdist.name} lacks {', '.join(missing)}")
        (staged / MARKER).write_text(f"{PACKAGE}=={pkg_version}\n{count} files\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staged, target)
    return target


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else default_target()
    print(f"llama.cpp converter ready: {fetch(target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
