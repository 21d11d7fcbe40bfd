"""Dataset files: streaming readers, shapes (alpaca, ShareGPT, messages...), conversion, validation.

`from core.formats import READABLE, head_rows` is the entry point the web services use; the
submodules hold one idea each: `readers` (rows of a file, numbered), `shapes` (what the rows look
like and how to map or convert them), `validation` (every problem, by row). Statistics,
deduplication and splitting live beside them (`stats`, `dedup`, `split`).

Nothing here imports torch, `datasets` or Flask: the web process uses it.
"""
from core.formats.readers import READABLE, Record, count_rows, head_rows, iter_records

__all__ = ["READABLE", "Record", "count_rows", "head_rows", "iter_records"]
