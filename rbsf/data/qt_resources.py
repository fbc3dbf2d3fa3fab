"""Read the files packed in a Qt binary resource file (``.rcc``, written by Qt's ``rcc --binary``).

Some Debian data packages ship their pictures only inside such files (GCompris keeps one per
activity under ``usr/share/gcompris-qt/rcc``). The layout, formats 1 to 3, big-endian:

  header  ``qres``, format version, then the offsets of the tree, the data and the names
          (format 3 adds a word of flags)
  tree    nodes of 14 bytes (format 1) or 22 (formats 2 and 3: a modification time added):
          name offset (4), flags (2), then for a folder its child count (4) and first child
          index (4), for a file its territory (2), language (2) and data offset (4)
  names   length in UTF-16 units (2), hash (4), the name in UTF-16
  data    length (4) and the bytes; zlib-compressed entries (flag 1) start with their
          uncompressed length (4); zstd-compressed ones (flag 4) are refused (no zstd here)

Every offset and length is checked against the file before it is used, so a truncated or
corrupt file gives ``QtResourceError``, never a wrong file.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Iterator, NoReturn, Tuple

from rbsf.errors import RBSFError

MAGIC = b"qres"
COMPRESSED_ZLIB = 1
FOLDER = 2
COMPRESSED_ZSTD = 4
MAX_ENTRY_BYTES = 1 << 28


class QtResourceError(RBSFError):
    """A Qt resource file that cannot be read; the message names the file and the fault."""


class _Reader:
    def __init__(self, path: Path, blob: bytes) -> None:
        self.path, self.blob = path, blob
        if blob[:4] != MAGIC or len(blob) < 20:
            self.fail("not a Qt binary resource file (no 'qres' header)")
        self.version, self.tree, self.data, self.names = self.words(">IIII", 4)
        if self.version not in (1, 2, 3):
            self.fail(f"format version {self.version} is not one of 1, 2, 3")
        self.node_size = 14 if self.version == 1 else 22

    def fail(self, why: str, fix: str = "fetch the package again") -> NoReturn:
        raise QtResourceError(f"{self.path}: {why}; {fix}")

    def words(self, layout: str, offset: int) -> tuple:
        end = offset + struct.calcsize(layout)
        if offset < 0 or end > len(self.blob):
            self.fail(f"needs bytes {offset}..{end} but the file has {len(self.blob)}")
        return struct.unpack_from(layout, self.blob, offset)

    def name(self, offset: int) -> str:
        start = self.names + offset
        (units,) = self.words(">H", start)
        end = start + 6 + 2 * units
        if end > len(self.blob):
            self.fail(f"a name runs past the end of the file ({end} > {len(self.blob)})")
        return self.blob[start + 6:end].decode("utf-16-be")

    def content(self, offset: int, flags: int, where: str) -> bytes:
        start = self.data + offset
        (size,) = self.words(">I", start)
        if start + 4 + size > len(self.blob):
            self.fail(f"the data of {where} runs past the end of the file")
        raw = self.blob[start + 4:start + 4 + size]
        if flags & COMPRESSED_ZSTD:
            self.fail(f"{where} is zstd-compressed", "this reader decodes zlib-compressed "
                      "entries only: take a build of the package whose rcc used zlib")
        if not flags & COMPRESSED_ZLIB:
            return raw
        if size < 4:
            self.fail(f"the compressed data of {where} has no length")
        (expected,) = struct.unpack_from(">I", raw)
        if expected > MAX_ENTRY_BYTES:
            self.fail(f"{where} claims {expected} bytes, more than {MAX_ENTRY_BYTES}")
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(raw[4:], expected + 1)
        except zlib.error as error:
            self.fail(f"the compressed data of {where} is corrupt ({error})")
        if len(out) != expected or not inflater.eof:
            self.fail(f"{where} inflates to {len(out)} bytes, not the {expected} it claims")
        return out

    def walk(self, index: int, prefix: str) -> Iterator[Tuple[str, bytes]]:
        base = self.tree + index * self.node_size
        name_offset, flags = self.words(">IH", base)
        path = prefix + "/" + self.name(name_offset) if index else ""
        if flags & FOLDER:
            count, first = self.words(">II", base + 6)
            if first <= index:
                self.fail(f"folder {path or '/'} points back to node {first}")
            for child in range(first, first + count):
                yield from self.walk(child, path)
        else:
            (offset,) = self.words(">I", base + 10)
            yield path, self.content(offset, flags, path)


def entries(path: Path) -> Iterator[Tuple[str, bytes]]:
    """(path inside the resource file, such as ``/gcompris/src/x.webp``, its bytes) of every file
    in the Qt resource file at ``path``, in the file's order."""
    path = Path(path)
    yield from _Reader(path, path.read_bytes()).walk(0, "")
