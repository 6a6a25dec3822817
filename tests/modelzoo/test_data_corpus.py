"""Corpus builder and sampler: deterministic shards and split, no train/validation crossing, blends drawn by
weight, resumable order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from modelzoo.config import DataConfig
from modelzoo.data import BlendSampler, CorpusError, build_blend, split_by_path, validation_batches
from modelzoo.shards import TokenStream
from modelzoo.tokenizer import SEPARATOR_ID

# One distinct letter per file: every token of a window tells which file it came from.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.fixture
def corpora_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "registered"
    root.mkdir()
    monkeypatch.setenv("FLIGHTDECK_CORPORA_DIR", str(root))
    return root


@pytest.fixture
def letter_corpus(corpora_dir: Path) -> Path:
    root = corpora_dir / "letters"
    for index, letter in enumerate(LETTERS):
        path = root / f"part{index % 3}" / f"{letter}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(letter * (200 + 37 * index))
    (root / ".hidden.txt").write_text("#" * 1000)  # hidden files are not corpus text
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)  # neither are binary files
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stream(n: int) -> TokenStream:
    return TokenStream([np.arange(n, dtype=np.uint32)])


def test_shards_and_split_are_deterministic_and_disjoint(letter_corpus: Path, tmp_path: Path) -> None:
    cfg = DataConfig(corpus="letters", val_fraction=0.2)
    first = build_blend(cfg, cache_root=tmp_path / "cache-a").corpora["letters"]
    second = build_blend(cfg, cache_root=tmp_path / "cache-b").corpora["letters"]

    for name in ("train-00000.bin", "val-00000.bin"):
        assert _digest(first.directory / name) == _digest(second.directory / name)
    assert first.meta["val_files"] == second.meta["val_files"]
    assert set(first.meta["train_files"]).isdisjoint(first.meta["val_files"])
    assert sorted(first.meta["train_files"] + first.meta["val_files"]) == sorted(
        f"part{i % 3}/{letter}.txt" for i, letter in enumerate(LETTERS)
    )
    # The validation shard is exactly the held-out files, each after a separator, in path order.
    expected_val = b"".join(b"\x00" + (letter_corpus / rel).read_bytes() for rel in first.meta["val_files"])
    assert bytes(first.val.to_array().astype(np.uint8)) == expected_val


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
    corpus = build_blend(DataConfig(corpus="letters", val_fraction=0.2), cache_root=tmp_path / "cache").corpora["letters"]
    val_letters = {ord(Path(rel).stem) for rel in corpus.meta["val_files"]}
    train_letters = {ord(Path(rel).stem) for rel in corpus.meta["train_files"]}
    sampler = BlendSampler({"letters": corpus.train}, {"letters": 1.0}, 16, 4, seed=3)
    seen = set()
    for _ in range(2 * sampler.num_windows["letters"] // 4):  # two epochs
        seen |= set(np.unique(sampler.next_batch().numpy()))
    assert seen == train_letters | {SEPARATOR_ID}
    assert not seen & val_letters


def test_each_epoch_visits_every_window_once() -> None:
    seq_len, batch = 10, 5
    sampler = BlendSampler({"a": _stream(1003)}, {"a": 1.0}, seq_len, batch, seed=11)  # 3 trailing tokens unused
    rows = np.concatenate([sampler.next_batch().numpy() for _ in range(2 * 100 // batch)])
    assert (np.diff(rows, axis=1) == 1).all() and (rows[:, 0] % seq_len == 0).all()
    first, second = rows[:100, 0], rows[100:, 0]
    assert sorted(first) == sorted(second) == list(range(0, 1000, seq_len))
    assert list(first) != list(second)  # each epoch draws its own order


def _two_corpora() -> dict[str, TokenStream]:
    # Disjoint token ranges: every row tells which corpus it came from.
    return {"code": _stream(10_000), "docs": TokenStream([np.arange(50_000, 53_000, dtype=np.uint32)])}


def test_a_blend_draws_sequences_in_proportion_to_its_weights() -> None:
    sampler = BlendSampler(_two_corpora(), {"code": 0.8, "docs": 0.2}, 16, 32, seed=5)
    rows = np.concatenate([sampler.next_batch().numpy() for _ in range(100)])  # 3200 sequences
    from_docs = float(np.mean(rows[:, 0] >= 50_000))
    assert 0.17 <= from_docs <= 0.23
    assert sampler.tokens_seen() == {"code": int((1 - from_docs) * 3200 + 0.5) * 16, "docs": int(from_docs * 3200 + 0.5) * 16}
    # docs has 187 windows: it wrapped into later epochs and each epoch covered every window.
    assert len(np.unique(rows[rows[:, 0] >= 50_000, 0])) == 3000 // 16


def test_a_blend_is_deterministic_and_resumes_the_same_stream_from_its_state() -> None:
    def sampler() -> BlendSampler:
        return BlendSampler(_two_corpora(), {"code": 0.5, "docs": 0.5}, 32, 8, seed=7)

    straight = sampler()
    expected = [straight.next_batch() for _ in range(60)]  # docs crosses into a second epoch (93 windows)
    assert all((a == b).all() for a, b in zip(expected, [sampler().next_batch()], strict=False))
    first = sampler()
    head = [first.next_batch() for _ in range(25)]
    resumed = sampler()
    resumed.load_state_dict(first.state_dict())
    tail = [resumed.next_batch() for _ in range(35)]
    assert all((a == b).all() for a, b in zip(expected, head + tail, strict=True))
    other_seed = BlendSampler(_two_corpora(), {"code": 0.5, "docs": 0.5}, 32, 8, seed=8)
    assert not all((a == other_seed.next_batch()).all() for a in expected[:3])


def test_a_corpus_walks_the_same_windows_whatever_it_is_blended_with() -> None:
    alone = BlendSampler({"docs": _two_corpora()["docs"]}, {"docs": 1.0}, 16, 4, seed=2)
    mixed = BlendSampler(_two_corpora(), {"code": 0.5, "docs": 0.5}, 16, 4, seed=2)
    docs_alone = np.concatenate([alone.next_batch().numpy() for _ in range(10)])[:, 0]
    mixed_rows = np.concatenate([mixed.next_batch().numpy() for _ in range(30)])[:, 0]
    docs_mixed = mixed_rows[mixed_rows >= 50_000]
    assert len(docs_mixed) >= 40 and list(docs_mixed[:40]) == list(docs_alone[:40])


def test_a_checkpoint_of_another_blend_is_refused() -> None:
    state = BlendSampler(_two_corpora(), {"code": 0.5, "docs": 0.5}, 16, 4, seed=2).state_dict()
    with pytest.raises(CorpusError, match="data.blend"):
        BlendSampler({"code": _stream(1000)}, {"code": 1.0}, 16, 4, seed=2).load_state_dict(state)


def test_ranks_split_the_global_batch_without_overlap() -> None:
    whole = BlendSampler(_two_corpora(), {"code": 0.5, "docs": 0.5}, 16, 8, seed=1).next_batch()
    parts = [BlendSampler(_two_corpora(), {"code": 0.5, "docs": 0.5}, 16, 8, seed=1, rank=r, world_size=2).next_batch()
             for r in range(2)]
    assert (np.concatenate([p.numpy() for p in parts]) == whole.numpy()).all()


def test_validation_batches_are_fixed_windows_of_the_validation_shard() -> None:
    batches = validation_batches(_stream(1000), 10, 4, 3)
    assert [tuple(b.shape) for b in batches] == [(4, 10)] * 3
    rows = np.concatenate([b.numpy() for b in batches])
    assert rows[0, 0] == 0 and rows[-1, -1] == 999
    assert (np.diff(rows, axis=1) == 1).all()


def test_a_registered_folder_without_text_is_refused_by_name(corpora_dir: Path, tmp_path: Path) -> None:
    empty = corpora_dir / "nothing-here"
    empty.mkdir()
    (empty / "data.bin").write_bytes(b"\x00\xff" * 50)
    with pytest.raises(CorpusError, match="'nothing-here' holds no UTF-8 text"):
        build_blend(DataConfig(corpus="nothing-here"), cache_root=tmp_path / "cache")


def test_bpe_is_trained_on_the_training_splits_and_round_trips(letter_corpus: Path, tmp_path: Path) -> None:
    words = letter_corpus / "words.txt"
    words.write_text("def forward(self, input_ids):\n    return self.head(input_ids)\n" * 40)
    cfg = DataConfig(corpus="letters", tokenizer="bpe", bpe_vocab_size=300, val_fraction=0.2)
    blend = build_blend(cfg, cache_root=tmp_path / "cache")
    corpus = blend.corpora["letters"]
    assert (corpus.directory / "tokenizer.json").is_file()
    train = corpus.train.to_array()
    assert blend.vocab_size <= 300 and int(np.max(train)) < blend.vocab_size
    assert len(train) < sum(len((letter_corpus / rel).read_bytes()) for rel in corpus.meta["train_files"]) / 2
    documents = np.split(train, np.flatnonzero(train == SEPARATOR_ID))[1:]
    decoded = [blend.tokenizer.decode(doc[1:]) for doc in documents]
    assert decoded == [(letter_corpus / rel).read_text() for rel in corpus.meta["train_files"]]


def test_a_cached_corpus_is_reused_and_no_staging_directory_is_left(letter_corpus: Path, tmp_path: Path) -> None:
    cfg = DataConfig(corpus="letters")
    first = build_blend(cfg, cache_root=tmp_path / "cache").corpora["letters"]
    second = build_blend(cfg, cache_root=tmp_path / "cache").corpora["letters"]
    assert first.directory == second.directory and first.meta == second.meta
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.directory.name]
    (letter_corpus / "part0" / "A.txt").write_text("changed")
    assert build_blend(cfg, cache_root=tmp_path / "cache").corpora["letters"].directory != first.directory
