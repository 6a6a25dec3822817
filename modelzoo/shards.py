"""Token shards on disk: raw little-endian ``uint16``/``uint32`` token files described by a ``manifest.json``.

The format (docs/contracts.md, "Pre-tokenized shards") is what the corpus cache writes and what teams that
tokenize elsewhere hand in as a registered corpus. Files are memory-mapped and read a window at a time, so a
corpus never has to fit in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelzoo.atomic_io import sync_file, write_synced

FORMAT = "flightdeck-token-shards"
VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "val")
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a file beside the manifest, never a path


class ShardError(ValueError):
    """A shard folder does not follow the format; the message names the manifest field at fault."""


class TokenStream:
    """The concatenation of one split's token files, read a window at a time from memory maps."""

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [len(part) for part in self.parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def window(self, start: int, length: int) -> np.ndarray:
        """Tokens ``[start, start + length)`` as int64, crossing file boundaries where needed."""
        if start < 0 or start + length > len(self):
            raise IndexError(f"window [{start}, {start + length}) outside a stream of {len(self)} tokens")
        pieces, position, end = [], start, start + length
        while position < end:
            index = int(np.searchsorted(self.starts, position, side="right")) - 1
            offset = position - int(self.starts[index])
            take = min(end - position, len(self.parts[index]) - offset)
            pieces.append(self.parts[index][offset : offset + take])
            position += take
        return np.concatenate(pieces).astype(np.int64) if pieces else np.empty(0, dtype=np.int64)

    def to_array(self) -> np.ndarray:
        """Everything, in memory (for tests and small splits only)."""
        return self.window(0, len(self))


@dataclass(frozen=True)
class Shards:
    directory: Path
    manifest: dict[str, Any]
    splits: dict[str, TokenStream]

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])


def write_shards(directory: Path, splits: dict[str, Sequence[np.ndarray]], *, dtype: str, vocab_size: int,
                 tokenizer: str, separator_id: int | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``splits`` (split -> token arrays, one file each) and their manifest into ``directory``."""
    if dtype not in DTYPES:
        raise ShardError(f"dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    entries: dict[str, list[dict[str, Any]]] = {}
    for split, arrays in splits.items():
        entries[split] = []
        for index, tokens in enumerate(arrays):
            name = f"{split}-{index:05d}.bin"
            with open(directory / name, "wb") as handle:
                handle.write(np.ascontiguousarray(tokens, dtype=DTYPES[dtype]).tobytes())
                sync_file(handle)
            entries[split].append({"file": name, "tokens": int(len(tokens))})
    manifest = {"format": FORMAT, "version": VERSION, "dtype": dtype, "vocab_size": vocab_size,
                "tokenizer": tokenizer, "separator_id": separator_id, "splits": entries, **(extra or {})}
    write_synced(directory / MANIFEST, json.dumps(manifest, indent=1).encode())  # last: it marks completion
    return manifest


def _manifest_errors(manifest: Any) -> list[str]:
    if not isinstance(manifest, dict):
        return ["manifest must be a JSON object"]
    errors = []
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        errors.append(f"format/version: must be {FORMAT!r} version {VERSION}")
    if manifest.get("dtype") not in DTYPES:
        errors.append(f"dtype: must be one of {', '.join(DTYPES)}, got {manifest.get('dtype')!r}")
    vocab = manifest.get("vocab_size")
    if not (isinstance(vocab, int) and 0 < vocab <= 2**32):
        errors.append(f"vocab_size: must be a positive integer, got {vocab!r}")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or any(split not in splits for split in SPLITS):
        return errors + ["splits: must map both 'train' and 'val' to lists of {file, tokens}"]
    for split in SPLITS:
        for entry in splits[split] if isinstance(splits[split], list) else [None]:
            ok = isinstance(entry, dict) and isinstance(entry.get("file"), str) and _FILE_NAME.match(entry["file"])
            if not ok or not isinstance(entry.get("tokens"), int) or entry["tokens"] < 0:
                errors.append(f"splits.{split}: each entry must be {{'file': plain file name, 'tokens': count}}")
                break
    return errors


def open_shards(directory: Path) -> Shards:
    """Memory-map the shards of ``directory``, checking each file's size against the manifest's token count."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise ShardError(f"{MANIFEST}: unreadable ({type(error).__name__})") from None
    errors = _manifest_errors(manifest)
    if errors:
        raise ShardError(f"{MANIFEST}: " + "; ".join(errors))
    dtype = DTYPES[manifest["dtype"]]
    splits = {}
    for split in SPLITS:
        parts = []
        for entry in manifest["splits"][split]:
            path = directory / entry["file"]
            expected = entry["tokens"] * dtype.itemsize
            if not path.is_file() or path.stat().st_size != expected:
                raise ShardError(f"{MANIFEST}: splits.{split}: {entry['file']} must hold exactly {entry['tokens']} "
                                 f"{manifest['dtype']} tokens")
            parts.append(np.memmap(path, dtype=dtype, mode="r") if expected else np.empty(0, dtype=dtype))
        splits[split] = TokenStream(parts)
    return Shards(directory, manifest, splits)
