"""Corpus builder and sampler: deterministic shards and split, no train/validation crossing, resumable order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from modelzoo.config import DataConfig
from modelzoo.data import BatchSampler, CorpusError, build_corpus, split_by_path, validation_batches
from modelzoo.tokenizer import SEPARATOR_ID

# One distinct letter per file: every token of a window tells which file it came from.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.fixture
def letter_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "letters"
    for index, letter in enumerate(LETTERS):
        path = root / f"part{index % 3}" / f"{letter}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(letter * (200 + 37 * index))
    (root / ".hidden.txt").write_text("#" * 1000)  # hidden files are not corpus text
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)  # neither are binary files
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shards_and_split_are_deterministic_and_disjoint(letter_corpus: Path, tmp_path: Path) -> None:
    cfg = DataConfig(corpus=str(letter_corpus), val_fraction=0.2)
    first = build_corpus(cfg, cache_root=tmp_path / "cache-a")
    second = build_corpus(cfg, cache_root=tmp_path / "cache-b")

    for name in ("train.bin", "val.bin"):
        assert _digest(first.directory / name) == _digest(second.directory / name)
    assert first.meta["val_files"] == second.meta["val_files"]
    assert set(first.meta["train_files"]).isdisjoint(first.meta["val_files"])
    assert sorted(first.meta["train_files"] + first.meta["val_files"]) == sorted(
        f"part{i % 3}/{letter}.txt" for i, letter in enumerate(LETTERS)
    )
    # The validation shard is exactly the held-out files, each after a separator, in path order.
    expected_val = b"".join(b"\x00" + (letter_corpus / rel).read_bytes() for rel in first.meta["val_files"])
    assert bytes(np.asarray(first.val, dtype=np.uint8)) == expected_val


def test_split_is_by_path_alone(tmp_path: Path) -> None:
    paths = [f"pkg/module_{i}.py" for i in range(200)]
    train, val = split_by_path(paths, 0.1)
    assert 5 <= len(val) <= 40  # about a tenth
    # Adding files elsewhere never moves an existing file across the split.
    _, val_with_more = split_by_path(paths + [f"other/extra_{i}.py" for i in range(50)], 0.1)
    assert set(val) == {p for p in val_with_more if p.startswith("pkg/")}
    assert split_by_path(list(reversed(paths)), 0.1)[1] == list(reversed(val))


def test_a_two_file_corpus_still_gets_both_splits() -> None:
    assert sorted(sum(split_by_path(["a.txt", "b.txt"], 0.01), [])) == ["a.txt", "b.txt"]
    train, val = split_by_path(["a.txt", "b.txt"], 0.99)
    assert len(train) == len(val) == 1


def test_sampler_stays_inside_the_training_files(letter_corpus: Path, tmp_path: Path) -> None:
    corpus = build_corpus(DataConfig(corpus=str(letter_corpus), val_fraction=0.2), cache_root=tmp_path / "cache")
    val_letters = {ord(Path(rel).stem) for rel in corpus.meta["val_files"]}
    train_letters = {ord(Path(rel).stem) for rel in corpus.meta["train_files"]}
    sampler = BatchSampler(corpus.train, 16, 4, seed=3)
    seen = set()
    for _ in range(2 * sampler.num_windows // 4):  # two epochs
        seen |= set(np.unique(sampler.next_batch().numpy()))
    assert seen == train_letters | {SEPARATOR_ID}
    assert not seen & val_letters


def test_each_epoch_visits_every_window_once() -> None:
    seq_len, batch = 10, 5
    tokens = np.arange(1003, dtype=np.uint16)  # 100 windows; the 3 trailing tokens never form one
    sampler = BatchSampler(tokens, seq_len, batch, seed=11)
    rows = np.concatenate([sampler.next_batch().numpy() for _ in range(2 * 100 // batch)])
    assert (np.diff(rows, axis=1) == 1).all() and (rows[:, 0] % seq_len == 0).all()
    first, second = rows[:100, 0], rows[100:, 0]
    assert sorted(first) == sorted(second) == list(range(0, 1000, seq_len))
    assert list(first) != list(second)  # each epoch draws its own order


def test_sampler_resumes_the_same_stream_from_its_state() -> None:
    tokens = np.arange(10_000, dtype=np.uint16)
    straight = BatchSampler(tokens, 32, 8, seed=7)
    expected = [straight.next_batch() for _ in range(60)]  # crosses into a second epoch (312 windows)

    first = BatchSampler(tokens, 32, 8, seed=7)
    head = [first.next_batch() for _ in range(25)]
    resumed = BatchSampler(tokens, 32, 8, seed=7)
    resumed.load_state_dict(first.state_dict())
    tail = [resumed.next_batch() for _ in range(35)]
    assert all((a == b).all() for a, b in zip(expected, head + tail, strict=True))


def test_ranks_split_the_global_batch_without_overlap() -> None:
    tokens = np.arange(4096, dtype=np.uint16)
    whole = BatchSampler(tokens, 16, 8, seed=1).next_batch()
    parts = [BatchSampler(tokens, 16, 8, seed=1, rank=r, world_size=2).next_batch() for r in range(2)]
    assert (np.concatenate([p.numpy() for p in parts]) == whole.numpy()).all()


def test_validation_batches_are_fixed_windows_of_the_validation_shard() -> None:
    tokens = np.arange(1000, dtype=np.uint16)
    batches = validation_batches(tokens, 10, 4, 3)
    assert [tuple(b.shape) for b in batches] == [(4, 10)] * 3
    rows = np.concatenate([b.numpy() for b in batches])
    assert rows[0, 0] == 0 and rows[-1, -1] == 999
    assert (np.diff(rows, axis=1) == 1).all()


def test_a_directory_without_text_is_refused_by_name(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    (empty / "data.bin").write_bytes(b"\x00\xff" * 50)
    with pytest.raises(CorpusError, match=f"{empty}.*no UTF-8 text"):
        build_corpus(DataConfig(corpus=str(empty)), cache_root=tmp_path / "cache")
    with pytest.raises(CorpusError, match="not a directory"):
        build_corpus(DataConfig(corpus=str(tmp_path / "missing")), cache_root=tmp_path / "cache")


def test_bpe_is_trained_on_the_training_files_and_round_trips(letter_corpus: Path, tmp_path: Path) -> None:
    words = letter_corpus / "words.txt"
    words.write_text("def forward(self, input_ids):\n    return self.head(input_ids)\n" * 40)
    cfg = DataConfig(corpus=str(letter_corpus), tokenizer="bpe", bpe_vocab_size=300, val_fraction=0.2)
    corpus = build_corpus(cfg, cache_root=tmp_path / "cache")
    assert (corpus.directory / "tokenizer.json").is_file()
    assert corpus.tokenizer.vocab_size <= 300 and int(np.max(corpus.train)) < corpus.tokenizer.vocab_size
    documents = np.split(np.asarray(corpus.train), np.flatnonzero(np.asarray(corpus.train) == SEPARATOR_ID))[1:]
    decoded = [corpus.tokenizer.decode(doc[1:]) for doc in documents]
    assert decoded == [(letter_corpus / rel).read_text() for rel in corpus.meta["train_files"]]


def test_a_cached_corpus_is_reused_and_no_staging_directory_is_left(letter_corpus: Path, tmp_path: Path) -> None:
    cfg = DataConfig(corpus=str(letter_corpus))
    first = build_corpus(cfg, cache_root=tmp_path / "cache")
    second = build_corpus(cfg, cache_root=tmp_path / "cache")
    assert first.directory == second.directory and first.meta == second.meta
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.directory.name]
    (letter_corpus / "part0" / "A.txt").write_text("changed")
    assert build_corpus(cfg, cache_root=tmp_path / "cache").directory != first.directory
