"""Tokenizers for the training corpus: raw bytes by default, or a byte-level BPE trained locally.

Both reserve id 0 as the document separator that the corpus builder puts between files, so a model never
learns to continue one file straight into the next without a boundary token.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

SEPARATOR_ID = 0
# Token shards are stored as uint16, which bounds every vocabulary.
MAX_VOCAB_SIZE = 2**16
_BPE_SEPARATOR = "<|endoftext|>"


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, data: bytes) -> np.ndarray: ...

    def encode_batch(self, documents: list[bytes]) -> list[np.ndarray]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class ByteTokenizer:
    """Every UTF-8 byte is one token (vocab 256); byte 0 never occurs in accepted text, so it is the separator."""

    vocab_size = 256

    def encode(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8).astype(np.uint16)

    def encode_batch(self, documents: list[bytes]) -> list[np.ndarray]:
        return [self.encode(document) for document in documents]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) for i in ids if i != SEPARATOR_ID).decode("utf-8", errors="replace")


class BPETokenizer:
    """Byte-level BPE from the `tokenizers` package; id 0 is the separator special token."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self._tokenizer = HFTokenizer.from_file(str(path))
        self.vocab_size = self._tokenizer.get_vocab_size()

    def encode(self, data: bytes) -> np.ndarray:
        ids = self._tokenizer.encode(data.decode("utf-8"), add_special_tokens=False).ids
        return np.asarray(ids, dtype=np.uint16)

    def encode_batch(self, documents: list[bytes]) -> list[np.ndarray]:
        """Like :meth:`encode` per document, with the documents spread over the CPU cores (in Rust)."""
        encodings = self._tokenizer.encode_batch([d.decode("utf-8") for d in documents], add_special_tokens=False)
        return [np.asarray(encoding.ids, dtype=np.uint16) for encoding in encodings]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tokenizer.decode([int(i) for i in ids])

    def save(self, path: Path) -> None:
        self._tokenizer.save(str(path))


def train_bpe(texts: Iterable[bytes], vocab_size: int, path: Path) -> BPETokenizer:
    """Train a byte-level BPE of ``vocab_size`` tokens on ``texts`` and save it to ``path``."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    smallest = len(pre_tokenizers.ByteLevel.alphabet()) + 1
    if not smallest <= vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(f"data.bpe_vocab_size: must be in [{smallest}, {MAX_VOCAB_SIZE}], got {vocab_size}")
    tokenizer = HFTokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[_BPE_SEPARATOR],  # first special token gets id 0 == SEPARATOR_ID
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((text.decode("utf-8") for text in texts), trainer=trainer)
    tokenizer.save(str(path))
    return BPETokenizer(path)
