"""Training data: registered corpora turned into memory-mapped token shards, and a resumable blend sampler.

1. A recipe names corpora (``data.blend``, or ``data.corpus`` as a one-corpus blend; see
   :mod:`modelzoo.corpora`). A text corpus's documents are taken in sorted name order up to a size cap.
2. Each document goes to train or validation by a hash of its name, so the split is deterministic, survives
   documents being added elsewhere, and no document straddles the two splits.
3. The text is tokenized (bytes, or a BPE trained on the train splits of the run's corpora), documents are
   joined with the separator id, and the result is written in the shard format of :mod:`modelzoo.shards`
   into a cache directory keyed by everything that shaped it. It is built under a temporary name and
   renamed, so a crash never leaves a half-built corpus. A pre-tokenized corpus is opened as it is.
4. :class:`BlendSampler` picks each sequence's corpus by weight from a seeded stream and walks each corpus's
   own seeded permutation of non-overlapping windows; its state is a few counters, saved in checkpoints, so a
   resumed run draws exactly the batches the original would have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelzoo.atomic_io import fsync_dir
from modelzoo.catalogue import default_cache_root
from modelzoo.config import DataConfig
from modelzoo.corpora import CorpusSource, UnknownCorpus, corpus_source
from modelzoo.shards import MANIFEST, ShardError, TokenStream, open_shards, write_shards
from modelzoo.tokenizer import SEPARATOR_ID, BPETokenizer, ByteTokenizer, Tokenizer, train_bpe

# Corpora are capped so each builds in seconds; documents are taken in sorted order up to the cap.
DEFAULT_MAX_CORPUS_BYTES = 8 * 2**20
# The BPE learns from at most this much of each corpus's training split, so its cost stays bounded.
BPE_SAMPLE_BYTES = 2 * 2**20
_FORMAT_VERSION = 2
_BLEND_STREAM = 0x0B1E4D  # separates the corpus-choice stream from the window permutations


class CorpusError(ValueError):
    """The corpus cannot be built or used; the message names the setting at fault."""


@dataclass(frozen=True)
class Corpus:
    name: str
    directory: Path
    train: TokenStream
    val: TokenStream
    meta: dict[str, Any]


@dataclass(frozen=True)
class Blend:
    """The corpora a run reads: ``weights`` (normalised, sorted by name) for training, ``corpora`` also holds
    the evaluation-only ones."""

    corpora: dict[str, Corpus]
    weights: dict[str, float]
    tokenizer: Tokenizer | None  # None for pre-tokenized corpora
    vocab_size: int


def split_by_path(relpaths: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """(train, validation) documents: one is held out when the hash of its name falls below ``val_fraction``.

    Both sides get at least one document whenever there are two, so a small corpus still has a validation set.
    """
    if len(relpaths) < 2:
        raise CorpusError("a train/validation split at document granularity needs at least 2 text documents")
    score = {path: int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") / 2**64 for path in relpaths}
    val = {path for path in relpaths if score[path] < val_fraction}
    if not val:
        val = {min(relpaths, key=score.__getitem__)}
    if len(val) == len(relpaths):
        val.remove(max(relpaths, key=score.__getitem__))
    return [p for p in relpaths if p not in val], [p for p in relpaths if p in val]


def _as_text(data: bytes) -> bytes | None:
    """``data`` when it is UTF-8 text without NUL bytes (NUL is the separator), else None."""
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return data


def _digest(identity: Any) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


@dataclass
class _TextCorpus:
    """A text corpus's identity, and (read on demand) its capped, split documents."""

    source: CorpusSource
    val_fraction: float
    max_bytes: int

    def __post_init__(self) -> None:
        documents = self.source.list_documents()
        self.key = _digest({"format": _FORMAT_VERSION, "name": self.source.name, "origin": self.source.origin,
                            "documents": [(d.name, d.size, d.version) for d in documents],
                            "val_fraction": self.val_fraction, "max_bytes": self.max_bytes})
        self._names = [d.name for d in documents]
        self._texts: dict[str, bytes] | None = None

    def texts(self) -> dict[str, bytes]:
        if self._texts is None:
            texts, total = {}, 0
            for name in self._names:
                if total >= self.max_bytes:
                    break
                data = _as_text(self.source.read(name))
                if data:
                    texts[name] = data
                    total += len(data)
            if not texts:
                raise CorpusError(f"data.blend: corpus {self.source.name!r} holds no UTF-8 text on this machine")
            self._texts = texts
        return self._texts

    def split(self) -> tuple[list[str], list[str]]:
        try:
            return split_by_path(sorted(self.texts()), self.val_fraction)
        except CorpusError as error:
            raise CorpusError(f"data.blend: corpus {self.source.name!r}: {error}") from None

    def train_sample(self, limit: int) -> Iterable[bytes]:
        taken = 0
        for name in self.split()[0]:
            if taken >= limit:
                return
            taken += len(self.texts()[name])
            yield self.texts()[name]


def _build_atomically(target: Path, fill: Any) -> None:
    """Run ``fill(staging)`` in a temporary sibling of ``target`` and rename it into place when it completes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        fill(staging)
        fsync_dir(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # another process finishing first is fine; anything else is not
                raise
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _bpe_tokenizer(texts: Sequence[_TextCorpus], vocab_size: int, cache_root: Path) -> tuple[BPETokenizer, str]:
    """The BPE learned from the training splits of ``texts`` (cached by their identity), and that identity."""
    key = f'bpe-{vocab_size}-{_digest({"sample": BPE_SAMPLE_BYTES, "corpora": sorted(t.key for t in texts)})}'
    target = cache_root / "tokenizers" / key

    def fill(staging: Path) -> None:
        samples = (text for corpus in texts for text in corpus.train_sample(BPE_SAMPLE_BYTES))
        try:
            train_bpe(samples, vocab_size, staging / "tokenizer.json")
        except ValueError as error:
            raise CorpusError(str(error)) from None

    if not (target / "tokenizer.json").is_file():
        _build_atomically(target, fill)
    return BPETokenizer(target / "tokenizer.json"), key


def _tokenize(documents: Iterable[bytes], tokenizer: Tokenizer) -> np.ndarray:
    """The documents' tokens, each document after a separator."""
    separator = np.array([SEPARATOR_ID], dtype=np.uint32)
    pieces = [piece for ids in tokenizer.encode_batch(list(documents)) for piece in (separator, ids.astype(np.uint32))]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint32)


def _text_shards(corpus: _TextCorpus, tokenizer: Tokenizer, tokenizer_key: str, cache_root: Path) -> Path:
    target = cache_root / f"{corpus.source.name}-{_digest([corpus.key, tokenizer_key])}"

    def fill(staging: Path) -> None:
        started = time.perf_counter()
        train_files, val_files = corpus.split()
        texts = corpus.texts()
        splits = {"train": [_tokenize((texts[f] for f in train_files), tokenizer)],
                  "val": [_tokenize((texts[f] for f in val_files), tokenizer)]}
        if isinstance(tokenizer, BPETokenizer):
            tokenizer.save(staging / "tokenizer.json")
        write_shards(staging, splits, dtype="uint16" if tokenizer.vocab_size <= 2**16 else "uint32",
                     vocab_size=tokenizer.vocab_size, tokenizer=tokenizer_key, separator_id=SEPARATOR_ID,
                     extra={"corpus": corpus.source.name, "kind": corpus.source.kind, "origin": corpus.source.origin,
                            "bytes": sum(len(text) for text in texts.values()), "train_files": train_files,
                            "val_files": val_files, "build_seconds": round(time.perf_counter() - started, 3),
                            "built_at": time.time()})

    if not (target / MANIFEST).is_file():
        _build_atomically(target, fill)
    return target


def _open(name: str, directory: Path) -> Corpus:
    try:
        shards = open_shards(directory)
    except ShardError as error:
        raise CorpusError(f"data.blend: corpus {name!r}: {error}") from None
    return Corpus(name, directory, shards.splits["train"], shards.splits["val"], shards.manifest)


def _sources(names: Iterable[str]) -> dict[str, CorpusSource]:
    try:
        return {name: corpus_source(name) for name in sorted(set(names))}
    except UnknownCorpus as error:
        raise CorpusError(f"data.blend: {error}") from None


def build_blend(cfg: DataConfig, cache_root: Path | None = None,
                max_bytes: int = DEFAULT_MAX_CORPUS_BYTES) -> Blend:
    """Build (or reuse from the cache) every corpus ``cfg`` reads and return them memory-mapped."""
    cache_root = cache_root or default_cache_root()
    weights = cfg.resolved_blend()
    sources = _sources([*weights, *cfg.eval_corpora])
    pretokenized = sorted(name for name, source in sources.items() if source.pretokenized_dir)
    if pretokenized:
        if len(pretokenized) < len(sources):
            raise CorpusError(f"data.blend: pre-tokenized corpora ({', '.join(pretokenized)}) cannot be read "
                              f"together with text corpora, whose tokens come from data.tokenizer")
        corpora = {name: _open(name, sources[name].pretokenized_dir) for name in pretokenized}
        tokenizers = {(c.meta.get("tokenizer"), c.meta["vocab_size"]) for c in corpora.values()}
        if len(tokenizers) > 1:
            raise CorpusError("data.blend: these pre-tokenized corpora were made with different tokenizers: "
                              + ", ".join(f"{n} ({c.meta.get('tokenizer')}, {c.meta['vocab_size']})"
                                          for n, c in corpora.items()))
        return Blend(corpora, weights, None, max(c.meta["vocab_size"] for c in corpora.values()))

    texts = {name: _TextCorpus(source, cfg.val_fraction, max_bytes) for name, source in sources.items()}
    tokenizer: Tokenizer
    if cfg.tokenizer == "bpe":
        tokenizer, tokenizer_key = _bpe_tokenizer(list(texts.values()), cfg.bpe_vocab_size, cache_root)
    else:
        tokenizer, tokenizer_key = ByteTokenizer(), "byte"
    corpora = {name: _open(name, _text_shards(text, tokenizer, tokenizer_key, cache_root))
               for name, text in texts.items()}
    return Blend(corpora, weights, tokenizer, tokenizer.vocab_size)


class BlendSampler:
    """Seeded, resumable batches of ``seq_len``-token windows drawn from corpora by weight (labels are the
    inputs, shifted inside the model, as in transformers).

    Sequence ``j`` of global batch ``b`` comes from the corpus drawn for it by the stream seeded with
    ``(seed, b)``. Each corpus is cut into non-overlapping windows, visited in epoch ``e`` in the permutation
    seeded with ``(seed, e, crc32(name))``, so a corpus's order does not depend on what it is blended with.
    Rank ``r`` of ``world_size`` takes its contiguous slice of the global batch, so the data order does not
    depend on the number of GPUs.
    """

    def __init__(self, streams: dict[str, TokenStream], weights: dict[str, float], seq_len: int, batch_size: int,
                 seed: int, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise CorpusError(f"train.batch_size: {batch_size} is not divisible by the world size {world_size}")
        self.names = sorted(weights)
        self.probabilities = np.array([weights[name] for name in self.names], dtype=np.float64)
        self.probabilities /= self.probabilities.sum()
        self.num_windows = {name: len(streams[name]) // seq_len for name in self.names}
        for name in self.names:
            if self.num_windows[name] < 1 and weights[name] > 0:
                raise CorpusError(f"train.seq_len: {seq_len} is longer than the {len(streams[name])}-token "
                                  f"training split of corpus {name!r}")
        self.streams, self.seq_len, self.batch_size, self.seed = streams, seq_len, batch_size, seed
        self.local = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        self.batches = 0
        self.drawn = dict.fromkeys(self.names, 0)
        self._orders: dict[tuple[str, int], np.ndarray] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "batches": self.batches, "drawn": dict(self.drawn)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["seed"] != self.seed:
            raise CorpusError(f"train.seed: checkpoint sampler used seed {state['seed']}, this run uses {self.seed}")
        if sorted(state["drawn"]) != self.names:
            raise CorpusError(f"data.blend: checkpoint sampler drew from {sorted(state['drawn'])}, this run "
                              f"blends {self.names}")
        self.batches, self.drawn = int(state["batches"]), {k: int(v) for k, v in state["drawn"].items()}

    def tokens_seen(self) -> dict[str, int]:
        """Tokens drawn so far from each corpus, over all ranks."""
        return {name: count * self.seq_len for name, count in self.drawn.items()}

    def _window_start(self, name: str, index: int) -> int:
        epoch, position = divmod(index, self.num_windows[name])
        if (name, epoch) not in self._orders:
            self._orders = {key: order for key, order in self._orders.items() if key[0] != name}
            rng = np.random.default_rng([self.seed, epoch, zlib.crc32(name.encode())])
            self._orders[(name, epoch)] = rng.permutation(self.num_windows[name])
        return int(self._orders[(name, epoch)][position]) * self.seq_len

    def next_batch(self) -> torch.Tensor:
        """This rank's (local_batch, seq_len) int64 token windows; advances the stream by a global batch."""
        rng = np.random.default_rng([self.seed, _BLEND_STREAM, self.batches])
        choices = rng.choice(len(self.names), size=self.batch_size, p=self.probabilities)
        rows = []
        for row, choice in enumerate(choices):
            name = self.names[choice]
            index = self.drawn[name]
            self.drawn[name] += 1
            if self.local.start <= row < self.local.stop:
                start = self._window_start(name, index)
                rows.append(self.streams[name].window(start, self.seq_len))
        self.batches += 1
        return torch.from_numpy(np.stack(rows))


def validation_batches(tokens: TokenStream, seq_len: int, batch_size: int, num_batches: int) -> list[torch.Tensor]:
    """A fixed evaluation set: ``num_batches`` batches of windows spread evenly across a validation split."""
    last_start = len(tokens) - seq_len
    if last_start < 0:
        raise CorpusError(f"train.seq_len: {seq_len} is longer than the {len(tokens)}-token validation split")
    starts = np.linspace(0, last_start, num_batches * batch_size).astype(np.int64)
    rows = np.stack([tokens.window(int(s), seq_len) for s in starts])
    return list(torch.from_numpy(rows).split(batch_size))
