"""The rows of a .json file, one at a time, without reading the file whole.

Guarantees: `json_rows(path)` yields the items of the file's top-level list, or of the one list an
object holds (`{"data": [...]}`), in order, each decoded by the standard library's decoder (so a
row reads exactly as `json.loads` would read it: NaN, big numbers, escapes). Memory holds one row
and one read-ahead chunk, not the file: reading the first rows of a file of millions costs the
same as of a small one. A UTF-8 BOM is dropped. Errors are `DatasetError`s naming the line, in
`json`'s words ("rows.json line 3: invalid JSON (Expecting value)"); a file that is not UTF-8
names the byte.

Does not: go on after invalid JSON (unlike a JSONL line, a broken item leaves no way to find where
the next one starts), or accept a single row larger than `MAX_ROW_CHARS`. An object holding a
second list is refused when reading reaches it, after the first list's rows.
"""
from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from core.datasets import DatasetError

CHUNK_BYTES = 1 << 16
MAX_ROW_CHARS = 256 << 20      # one item of the list; beyond it the file is refused
LOOKAHEAD = 8                  # characters past a value's end that must be read before trusting it
NOT_A_ROW_LIST = "expected a list of rows, or an object holding one"
_SPACES = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def json_rows(path: Path) -> Iterator[Any]:
    """The items of the file's row list (each an object for a well-formed dataset)."""
    with path.open("rb") as f:
        reader = _JsonReader(f, path.name)
        start = reader.next_char()
        if start == "[":
            reader.pos += 1
            yield from reader.list_items()
        elif start == "{":
            reader.pos += 1
            yield from reader.object_list_items()
        else:
            raise DatasetError(f"{path.name}: {NOT_A_ROW_LIST}")
        if reader.next_char() is not None:
            raise reader.invalid("Extra data")


class _JsonReader:
    """A window over the decoded text: `text[pos:]` is what is left to parse; `lines_before`
    counts the line breaks in what was dropped, so errors name lines of the file."""

    def __init__(self, f: BinaryIO, name: str):
        self.f, self.name = f, name
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text, self.pos, self.lines_before, self.bytes_read = "", 0, 0, 0
        self.eof = False

    # reading ---------------------------------------------------------------------------------
    def _read_more(self) -> bool:
        """Append the next chunk (at least as much again as is buffered, so a long row costs
        linear time); False at the end of the file."""
        if self.eof:
            return False
        chunk = self.f.read(max(CHUNK_BYTES, len(self.text) - self.pos))
        pending = len(self.decoder.getstate()[0])  # bytes of a character cut by the last chunk
        try:
            self.text += self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as err:
            raise DatasetError(f"{self.name} is not UTF-8 text (byte {self.bytes_read - pending + err.start})"
                               "; save it as UTF-8") from None
        self.bytes_read += len(chunk)
        self.eof = not chunk
        return bool(chunk)

    def _drop_parsed(self) -> None:
        if self.pos > CHUNK_BYTES:
            self.lines_before += self.text.count("\n", 0, self.pos)
            self.text, self.pos = self.text[self.pos:], 0

    def next_char(self) -> str | None:
        """The next character that is not whitespace (left in place), or None at the end. A run
        of whitespace is skipped at C speed and dropped as it is passed, so it costs linear
        time and no memory however long it is."""
        while True:
            self.pos = _SPACES.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            self.lines_before += self.text.count("\n")
            self.text, self.pos = "", 0
            if not self._read_more():
                return None

    def value(self) -> Any:
        """The JSON value starting at the next character, reading ahead until it is whole."""
        self.next_char()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as err:
                if self._may_be_cut(err) and self._read_more_for_row():
                    continue
                raise self.invalid(err.msg, err.pos) from None
            except (RecursionError, ValueError) as err:  # nested too deep, a number too long
                raise self.invalid(type(err).__name__) from None
            if end >= len(self.text) - LOOKAHEAD and self._read_more_for_row():
                continue  # a number at the window's end ("1" of "1.5e3") may go on after it
            self.pos = end
            self._drop_parsed()
            return value

    def _may_be_cut(self, err: json.JSONDecodeError) -> bool:
        """Whether the error may come from the window ending inside the value."""
        return not self.eof and (err.msg.startswith("Unterminated string")
                                 or err.pos >= len(self.text) - LOOKAHEAD)

    def _read_more_for_row(self) -> bool:
        if len(self.text) - self.pos > MAX_ROW_CHARS:
            raise DatasetError(f"{self.name} line {self.line_at(self.pos)}: an item over "
                               f"{MAX_ROW_CHARS >> 20} MB of text, or JSON that never closes")
        return self._read_more()

    def expect(self, char: str, message: str) -> None:
        if self.next_char() != char:
            raise self.invalid(message)
        self.pos += 1

    # structure -------------------------------------------------------------------------------
    def list_items(self) -> Iterator[Any]:
        """The items of a list whose `[` was just read, through its `]`."""
        if self._closes_empty("]"):
            return
        while True:
            yield self.value()
            if self._closes("]"):
                return

    def object_list_items(self) -> Iterator[Any]:
        """The items of the one list in an object whose `{` was just read; other values are
        read and dropped."""
        found = False
        closed = self._closes_empty("}")
        while not closed:
            if self.next_char() != '"':
                raise self.invalid("Expecting property name enclosed in double quotes")
            self.value()
            self.expect(":", "Expecting ':' delimiter")
            if self.next_char() == "[":
                if found:
                    raise DatasetError(f"{self.name}: {NOT_A_ROW_LIST}")
                found, self.pos = True, self.pos + 1
                yield from self.list_items()
            else:
                self.value()
            closed = self._closes("}")
        if not found:
            raise DatasetError(f"{self.name}: {NOT_A_ROW_LIST}")

    def _closes_empty(self, end: str) -> bool:
        """Whether the container just opened is empty (its `end` is read if so)."""
        if self.next_char() == end:
            self.pos += 1
            return True
        return False

    def _closes(self, end: str) -> bool:
        """After an item: True when `end` closes the container, False after a comma (both
        read); anything else is invalid JSON."""
        following = self.next_char()
        if following not in (end, ","):
            raise self.invalid("Expecting ',' delimiter")
        self.pos += 1
        return following == end

    # errors ----------------------------------------------------------------------------------
    def line_at(self, pos: int) -> int:
        return self.lines_before + self.text.count("\n", 0, pos) + 1

    def invalid(self, message: str, pos: int | None = None) -> DatasetError:
        line = self.line_at(self.pos if pos is None else pos)
        return DatasetError(f"{self.name} line {line}: invalid JSON ({message})")
