"""Training data: a directory of text files turned into memory-mapped token shards, and a resumable sampler.

1. List the corpus's text files in sorted relative-path order (the default corpus ``stdlib`` is the Python
   standard library's own ``.py`` sources, present on every machine without a download).
2. Assign each file to train or validation by a hash of its relative path, so the split is deterministic,
   survives files being added elsewhere, and no file straddles the two splits.
3. Tokenize (bytes, or a BPE trained on the train files), join the documents with the separator id, and
   write ``train.bin`` / ``val.bin`` (uint16) into a cache directory keyed by everything that shaped them.
   The directory is built under a temporary name and renamed, so a crash never leaves a half-built corpus.
4. :class:`BatchSampler` walks a seeded permutation of non-overlapping windows of the train shard; its whole state is
   one counter, saved in checkpoints, so a resumed run draws exactly the batches the original would have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelzoo.atomic_io import fsync_dir, sync_file, write_synced
from modelzoo.config import DataConfig
from modelzoo.tokenizer import SEPARATOR_ID, BPETokenizer, ByteTokenizer, Tokenizer, train_bpe

CACHE_ENV = "FLIGHTDECK_DATA_CACHE"
# Corpora are capped so the default one builds in seconds; files are taken in sorted order up to the cap.
DEFAULT_MAX_CORPUS_BYTES = 8 * 2**20
STDLIB_CORPUS = "stdlib"
_FORMAT_VERSION = 1
_STDLIB_EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
_META = "meta.json"  # written last: its presence marks a complete corpus directory


class CorpusError(ValueError):
    """The corpus cannot be built or used; the message names the directory or setting at fault."""


@dataclass(frozen=True)
class Corpus:
    directory: Path
    train: np.ndarray
    val: np.ndarray
    tokenizer: Tokenizer
    meta: dict[str, Any]


def default_cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "flightdeck" / "corpora")


def corpus_source(corpus: str) -> Path:
    """The directory a ``data.corpus`` value names."""
    if corpus == STDLIB_CORPUS:
        return Path(sysconfig.get_paths()["stdlib"])
    return Path(corpus).expanduser()


def list_source_files(root: Path, stdlib: bool) -> list[str]:
    """Candidate files under ``root`` as sorted POSIX relative paths (hidden entries skipped)."""
    if not root.is_dir():
        raise CorpusError(f"data.corpus: {root} is not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (stdlib and d in _STDLIB_EXCLUDED_DIRS)]
        for name in filenames:
            if name.startswith(".") or (stdlib and not name.endswith(".py")):
                continue
            if (Path(dirpath) / name).is_file():
                found.append((rel_dir / name).as_posix())
    return sorted(found)


def split_by_path(relpaths: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """(train, validation) files: a file is held out when the hash of its path falls below ``val_fraction``.

    Both sides get at least one file whenever there are two, so a small corpus still has a validation set.
    """
    if len(relpaths) < 2:
        raise CorpusError("a train/validation split at file granularity needs at least 2 text files")
    score = {path: int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") / 2**64 for path in relpaths}
    val = {path for path in relpaths if score[path] < val_fraction}
    if not val:
        val = {min(relpaths, key=score.__getitem__)}
    if len(val) == len(relpaths):
        val.remove(max(relpaths, key=score.__getitem__))
    return [p for p in relpaths if p not in val], [p for p in relpaths if p in val]


def _read_text(path: Path) -> bytes | None:
    """The file's bytes when it is UTF-8 text without NUL bytes (NUL is the separator), else None."""
    data = path.read_bytes()
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return data


def _cache_key(root: Path, relpaths: list[str], cfg: DataConfig, max_bytes: int) -> str:
    stats = [(rel, stat.st_size, stat.st_mtime_ns) for rel in relpaths for stat in [(root / rel).stat()]]
    identity = {
        "format": _FORMAT_VERSION,
        "root": str(root.resolve()),
        "files": stats,
        "tokenizer": cfg.tokenizer,
        "bpe_vocab_size": cfg.bpe_vocab_size if cfg.tokenizer == "bpe" else None,
        "val_fraction": cfg.val_fraction,
        "max_bytes": max_bytes,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def build_corpus(cfg: DataConfig, cache_root: Path | None = None, max_bytes: int = DEFAULT_MAX_CORPUS_BYTES) -> Corpus:
    """Build (or reuse from the cache) the token shards for ``cfg`` and return them memory-mapped."""
    root = corpus_source(cfg.corpus)
    relpaths = list_source_files(root, stdlib=cfg.corpus == STDLIB_CORPUS)
    target = (cache_root or default_cache_root()) / _cache_key(root, relpaths, cfg, max_bytes)
    if not (target / _META).is_file():
        _build_into(target, root, relpaths, cfg, max_bytes)
    return load_corpus(target)


def _build_into(target: Path, root: Path, relpaths: list[str], cfg: DataConfig, max_bytes: int) -> None:
    started = time.perf_counter()
    texts: dict[str, bytes] = {}
    total = 0
    for rel in relpaths:
        if total >= max_bytes:
            break
        data = _read_text(root / rel)
        if data:
            texts[rel] = data
            total += len(data)
    if not texts:
        raise CorpusError(f"data.corpus: {root} holds no UTF-8 text files")
    try:
        train_files, val_files = split_by_path(sorted(texts), cfg.val_fraction)
    except CorpusError as error:
        raise CorpusError(f"data.corpus: {root}: {error}") from None

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        tokenizer: Tokenizer
        if cfg.tokenizer == "bpe":
            try:
                tokenizer = train_bpe((texts[f] for f in train_files), cfg.bpe_vocab_size, staging / "tokenizer.json")
            except ValueError as error:
                raise CorpusError(str(error)) from None
        else:
            tokenizer = ByteTokenizer()
        counts = {
            split: _write_shard(staging / f"{split}.bin", (texts[f] for f in files), tokenizer)
            for split, files in (("train", train_files), ("val", val_files))
        }
        meta = {
            "source": str(root),
            "tokenizer": cfg.tokenizer,
            "vocab_size": tokenizer.vocab_size,
            "bytes": total,
            "tokens": counts,
            "train_files": train_files,
            "val_files": val_files,
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        write_synced(staging / _META, json.dumps(meta, indent=1).encode())
        fsync_dir(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / _META).is_file():  # another process finishing first is fine; anything else is not
                raise
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_shard(path: Path, documents: Any, tokenizer: Tokenizer) -> int:
    separator = np.array([SEPARATOR_ID], dtype=np.uint16).tobytes()
    count = 0
    with open(path, "wb") as handle:
        for document in documents:
            ids = tokenizer.encode(document)
            handle.write(separator)
            handle.write(ids.tobytes())
            count += 1 + len(ids)
        sync_file(handle)
    return count


def load_corpus(directory: Path) -> Corpus:
    meta = json.loads((directory / _META).read_text())
    tokenizer: Tokenizer = BPETokenizer(directory / "tokenizer.json") if meta["tokenizer"] == "bpe" else ByteTokenizer()
    shards = {split: np.memmap(directory / f"{split}.bin", dtype=np.uint16, mode="r") for split in ("train", "val")}
    return Corpus(directory, shards["train"], shards["val"], tokenizer, meta)


class BatchSampler:
    """Seeded, resumable batches of ``seq_len``-token windows from one shard (labels are the inputs, shifted
    inside the model, as in transformers).

    The shard is cut into non-overlapping windows; epoch ``e`` visits them in the permutation drawn from
    ``(seed, e)``. The global batch is the next ``batch_size`` windows of that stream and rank ``r`` of
    ``world_size`` takes its contiguous slice, so the data order does not depend on the number of GPUs.
    """

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.num_windows = len(tokens) // seq_len
        if self.num_windows < 1:
            raise CorpusError(f"train.seq_len: {seq_len} is longer than the {len(tokens)}-token training split")
        if batch_size % world_size:
            raise CorpusError(f"train.batch_size: {batch_size} is not divisible by the world size {world_size}")
        self.tokens, self.seq_len, self.batch_size, self.seed = tokens, seq_len, batch_size, seed
        self.local = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        self.drawn = 0
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def state_dict(self) -> dict[str, int]:
        return {"drawn": self.drawn, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["seed"] != self.seed:
            raise CorpusError(f"train.seed: checkpoint sampler used seed {state['seed']}, this run uses {self.seed}")
        self.drawn = int(state["drawn"])

    def _window(self, index: int) -> int:
        epoch, position = divmod(index, self.num_windows)
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
            self._epoch = epoch
        return int(self._order[position])

    def next_batch(self) -> torch.Tensor:
        """This rank's (local_batch, seq_len) int64 token windows; advances the stream by a global batch."""
        indices = range(self.drawn, self.drawn + self.batch_size)[self.local]
        self.drawn += self.batch_size
        starts = [self._window(index) * self.seq_len for index in indices]
        rows = np.stack([self.tokens[s : s + self.seq_len] for s in starts]).astype(np.int64)
        return torch.from_numpy(rows)


def validation_batches(tokens: np.ndarray, seq_len: int, batch_size: int, num_batches: int) -> list[torch.Tensor]:
    """A fixed evaluation set: ``num_batches`` batches of windows spread evenly across the validation shard."""
    last_start = len(tokens) - seq_len
    if last_start < 0:
        raise CorpusError(f"train.seq_len: {seq_len} is longer than the {len(tokens)}-token validation split")
    starts = np.linspace(0, last_start, num_batches * batch_size).astype(np.int64)
    rows = np.stack([tokens[s : s + seq_len] for s in starts]).astype(np.int64)
    return list(torch.from_numpy(rows).split(batch_size))
