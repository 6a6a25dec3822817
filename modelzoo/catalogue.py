"""What the corpora page shows: every registered corpus with the figures of its builds in the data cache.

Nothing is built or read here beyond manifests, so listing stays cheap; a text corpus that no run has used yet
has no figures until its first build.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelzoo.corpora import MANIFEST, registered_corpora

CACHE_ENV = "FLIGHTDECK_DATA_CACHE"


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    kind: str
    description: str
    origin: str  # "built-in" or "registered"
    built: bool
    size_bytes: int | None = None
    train_files: int | None = None
    val_files: int | None = None
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)  # tokenizer -> {"train": n, "val": n}

    @property
    def files(self) -> int | None:
        return None if self.train_files is None else self.train_files + (self.val_files or 0)


def default_cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "flightdeck" / "corpora")


def _tokens(manifest: dict[str, Any]) -> dict[str, int]:
    return {split: sum(entry["tokens"] for entry in manifest["splits"][split]) for split in ("train", "val")}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _pretokenized(name: str, kind: str, description: str, folder: Path) -> CorpusInfo:
    manifest = _read(folder / MANIFEST)
    if manifest is None or not isinstance(manifest.get("splits"), dict):
        return CorpusInfo(name, kind, description, "registered", built=False)
    entries = {split: manifest["splits"].get(split) or [] for split in ("train", "val")}
    files = [str(entry.get("file")) for split in entries.values() for entry in split if isinstance(entry, dict)]
    # Plain names only, as modelzoo.shards reads them: a manifest never points this page outside its folder.
    size = sum((folder / name).stat().st_size for name in files if "/" not in name and (folder / name).is_file())
    return CorpusInfo(name, kind, description, "registered", built=True, size_bytes=size,
                      train_files=len(entries["train"]), val_files=len(entries["val"]),
                      tokens={str(manifest.get("tokenizer", "pre-tokenized")): _tokens(manifest)})


def corpus_catalogue(cache_root: Path | None = None) -> list[CorpusInfo]:
    """Every registered corpus, by name, with the sizes and token counts of its cached builds."""
    root = cache_root or default_cache_root()
    builds: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else []:
        manifest = _read(path)
        if manifest and isinstance(manifest.get("corpus"), str):
            builds.setdefault(manifest["corpus"], []).append(manifest)
    catalogue = []
    for name, source in registered_corpora().items():
        if source.pretokenized_dir is not None:
            catalogue.append(_pretokenized(name, source.kind, source.description, source.pretokenized_dir))
            continue
        found = builds.get(name, [])
        if not found:
            catalogue.append(CorpusInfo(name, source.kind, source.description, source.origin, built=False))
            continue
        newest = max(found, key=lambda m: m.get("built_at", 0))
        catalogue.append(CorpusInfo(
            name, source.kind, source.description, source.origin, built=True, size_bytes=newest["bytes"],
            train_files=len(newest["train_files"]), val_files=len(newest["val_files"]),
            tokens={m["tokenizer"]: _tokens(m) for m in sorted(found, key=lambda m: m.get("built_at", 0))},
        ))
    return catalogue
