"""The pre-tokenized shard format (docs/contracts.md): written and read back exactly, memory-mapped, strict
manifest checks, and a registered folder holding a manifest used as is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelzoo.catalogue import corpus_catalogue
from modelzoo.config import DataConfig
from modelzoo.data import BlendSampler, CorpusError, build_blend
from modelzoo.shards import MANIFEST, ShardError, open_shards, write_shards


def _write(directory: Path, dtype: str, vocab_size: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    splits = {"train": [rng.integers(0, vocab_size, size=n) for n in (1000, 1, 2500)],
              "val": [rng.integers(0, vocab_size, size=300)]}
    directory.mkdir(parents=True, exist_ok=True)
    write_shards(directory, splits, dtype=dtype, vocab_size=vocab_size, tokenizer="someone-elses-bpe",
                 separator_id=None)
    return splits


@pytest.mark.parametrize("dtype, vocab_size", [("uint16", 2**16), ("uint32", 200_000)])
def test_shards_read_back_exactly_through_memory_maps(tmp_path: Path, dtype: str, vocab_size: int) -> None:
    splits = _write(tmp_path, dtype, vocab_size)
    shards = open_shards(tmp_path)
    for split, arrays in splits.items():
        whole = np.concatenate(arrays)
        assert np.array_equal(shards.splits[split].to_array(), whole)
        assert all(isinstance(part, np.memmap) for part in shards.splits[split].parts)
    train = np.concatenate(splits["train"])
    assert np.array_equal(shards.splits["train"].window(995, 10), train[995:1005])  # across two files
    assert shards.vocab_size == vocab_size and shards.manifest["tokenizer"] == "someone-elses-bpe"
    # The documented layout: raw little-endian tokens, nothing else in the file.
    raw = np.fromfile(tmp_path / "train-00000.bin", dtype="<u2" if dtype == "uint16" else "<u4")
    assert np.array_equal(raw, splits["train"][0])


@pytest.mark.parametrize("edit, expected", [
    (lambda m: m.update(dtype="int8"), "dtype: must be one of uint16, uint32"),
    (lambda m: m.update(version=9), "format/version"),
    (lambda m: m["splits"].pop("val"), "splits: must map both 'train' and 'val'"),
    (lambda m: m["splits"]["train"][0].update(file="../../etc/passwd"), "splits.train: each entry must be"),
    (lambda m: m["splits"]["train"][0].update(tokens=999), "train-00000.bin must hold exactly 999 uint16 tokens"),
])
def test_a_broken_manifest_is_refused_naming_the_field(tmp_path: Path, edit, expected: str) -> None:
    _write(tmp_path, "uint16", 1000)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    edit(manifest)
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match=expected):
        open_shards(tmp_path)


def test_a_registered_folder_of_shards_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registered = tmp_path / "registered"
    splits = _write(registered / "web-tokens", "uint16", 5000)
    _write(registered / "more-tokens", "uint16", 5000, seed=1)
    monkeypatch.setenv("FLIGHTDECK_CORPORA_DIR", str(registered))
    cache = tmp_path / "cache"
    blend = build_blend(DataConfig(blend={"web-tokens": 1, "more-tokens": 1}), cache_root=cache)
    assert not cache.exists()  # nothing copied or re-tokenized
    assert blend.vocab_size == 5000 and blend.tokenizer is None
    assert np.array_equal(blend.corpora["web-tokens"].val.to_array(), splits["val"][0])
    rows = BlendSampler({n: c.train for n, c in blend.corpora.items()}, blend.weights, 50, 4, seed=0).next_batch()
    assert rows.shape == (4, 50)

    (registered / "prose").mkdir()
    (registered / "prose" / "a.txt").write_text("text " * 100)
    (registered / "prose" / "b.txt").write_text("more " * 100)
    with pytest.raises(CorpusError, match="pre-tokenized corpora .* cannot be read together with text corpora"):
        build_blend(DataConfig(blend={"web-tokens": 1, "prose": 1}), cache_root=cache)


def test_the_catalogue_reads_a_shard_folder_from_its_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registered = tmp_path / "registered"
    _write(registered / "web-tokens", "uint32", 70_000)
    monkeypatch.setenv("FLIGHTDECK_CORPORA_DIR", str(registered))
    info = next(c for c in corpus_catalogue(tmp_path / "empty-cache") if c.name == "web-tokens")
    assert (info.kind, info.origin, info.built) == ("pre-tokenized shards", "registered", True)
    assert info.tokens == {"someone-elses-bpe": {"train": 3501, "val": 300}}
    assert (info.train_files, info.val_files, info.size_bytes) == (3, 1, 3801 * 4)
