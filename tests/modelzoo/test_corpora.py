"""Registered corpora: built-ins present without a download, operator folders by name, and no path ever
accepted — at submission (validate_patch), in recipes and again when the trainer builds its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelzoo.config import ConfigError, DataConfig, apply_overrides, load_recipe, merge_overrides, validate_patch
from modelzoo.corpora import BUILTINS, corpus_source, registered_corpora
from modelzoo.data import CorpusError, build_blend


@pytest.fixture
def corpora_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "registered"
    (root / "team-notes").mkdir(parents=True)
    for index in range(4):
        (root / "team-notes" / f"note{index}.md").write_text(f"# note {index}\n" + "words and more words\n" * 30)
    (root / "Not A Name").mkdir()  # folders whose name is not a plain word are not corpora
    (root / "stdlib").mkdir()  # and none may shadow a built-in
    monkeypatch.setenv("FLIGHTDECK_CORPORA_DIR", str(root))
    return root


def test_three_kinds_of_built_in_corpora_need_no_download() -> None:
    kinds = {name: corpus_source(name).kind.split()[0] for name in BUILTINS}
    assert len(set(kinds.values())) >= 3, kinds
    for name in BUILTINS:
        assert len(corpus_source(name).list_documents()) >= 2, name


def test_built_in_corpora_build_deterministically_under_their_cap(tmp_path: Path) -> None:
    cfg = DataConfig(blend={name: 1.0 for name in BUILTINS})
    cap = 64 * 1024
    first = build_blend(cfg, cache_root=tmp_path / "a", max_bytes=cap)
    second = build_blend(cfg, cache_root=tmp_path / "b", max_bytes=cap)
    for name in BUILTINS:
        a, b = first.corpora[name], second.corpora[name]
        assert cap <= a.meta["bytes"] < cap + 4 * 2**20, name  # the last document may cross the cap
        assert a.meta["train_files"] == b.meta["train_files"] and a.meta["val_files"]
        assert np.array_equal(a.train.to_array(), b.train.to_array())


def test_operator_folders_are_registered_by_name(corpora_dir: Path) -> None:
    names = list(registered_corpora())
    assert "team-notes" in names and "Not A Name" not in names
    assert corpus_source("stdlib").origin == "built-in"
    assert corpus_source("team-notes").origin == "registered"


PATHS = ["/etc", "/nonexistent/corpus", "../stdlib", "./stdlib", "stdlib/..", "~", "team-notes/../../x", "stdlib/", "stdlib\n"]


@pytest.mark.parametrize("path", PATHS)
def test_submission_refuses_any_path_listing_the_registered_names(corpora_dir: Path, path: str) -> None:
    for key, patch in (("data.corpus", {"data.corpus": path}), ("data.blend", {"data.blend": {path: 1}}),
                       ("data.eval_corpora", {"data.eval_corpora": [path]})):
        (message,) = validate_patch(patch)
        assert message.startswith(f"{key}: {path!r} is not a registered corpus")
        assert "registered: debian-copyright, manpages, python-docs, stdlib, team-notes" in message


def test_an_existing_path_reads_exactly_like_a_missing_one(corpora_dir: Path) -> None:
    existing, missing = str(corpora_dir / "team-notes"), str(corpora_dir / "no-such-folder")
    messages = [validate_patch({"data.corpus": path})[0].replace(path, "PATH") for path in (existing, missing)]
    assert messages[0] == messages[1]
    with pytest.raises(ConfigError) as error:
        apply_overrides(load_recipe("tiny-ci"), {"data.corpus": existing})
    assert str(error.value).replace(existing, "PATH") == messages[0]


def test_the_data_builder_refuses_paths_again_without_reading_them(tmp_path: Path) -> None:
    # A config that skipped validation (e.g. an old checkpoint's): the builder refuses before any filesystem access.
    cache = tmp_path / "cache"
    for path in (str(tmp_path), "/nonexistent"):
        with pytest.raises(CorpusError, match="data.blend: '.*' is not a registered corpus"):
            build_blend(DataConfig(corpus=path), cache_root=cache)
    assert not cache.exists()


@pytest.mark.parametrize("blend, expected", [
    ({"stdlib": -0.5, "manpages": 1}, "data.blend: the weight of 'stdlib' must be a number >= 0"),
    ({"stdlib": 0, "manpages": 0}, "data.blend: at least one weight must be > 0"),
    ({"stdlib": "heavy"}, "data.blend: the weight of 'stdlib' must be a number >= 0"),
    ({"stdlib": True}, "data.blend: the weight of 'stdlib' must be a number >= 0"),
    ({"nope": 1}, "data.blend: 'nope' is not a registered corpus"),
    (["stdlib"], "data.blend: expected an object of corpus name -> weight"),
    ("stdlib", "data.blend: expected an object of corpus name -> weight"),
])
def test_bad_blends_are_refused_naming_the_key(blend: object, expected: str) -> None:
    errors = validate_patch({"data.blend": blend})
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_a_blend_is_normalised_and_replaces_the_single_corpus() -> None:
    recipe = apply_overrides(load_recipe("tiny-ci"), {"data.blend": {"stdlib": 3, "python-docs": 1}})
    assert recipe.data.blend == {"python-docs": 0.25, "stdlib": 0.75} and recipe.data.corpus == ""
    same = apply_overrides(load_recipe("tiny-ci"), {"data.blend": {"python-docs": 2, "stdlib": 6}})
    assert same.config_hash() == recipe.config_hash()
    single = apply_overrides(recipe, {"data.corpus": "manpages"})
    assert single.data.resolved_blend() == {"manpages": 1.0} and single.data.blend == {}
    with pytest.raises(ConfigError, match="data.blend: set either data.corpus .* or data.blend"):
        apply_overrides(recipe, {"data.corpus": "manpages", "data.blend": {"stdlib": 1}})


def test_a_later_layer_choosing_the_data_replaces_the_earlier_choice() -> None:
    baseline = {"data.corpus": "manpages", "optim.lr": 0.001}
    patch = {"data.blend": {"stdlib": 1, "python-docs": 1}}
    merged = merge_overrides(baseline, patch, {"train.seed": 3})
    assert merged == {"optim.lr": 0.001, "data.blend": {"stdlib": 1, "python-docs": 1}, "train.seed": 3}
    assert merge_overrides(patch, {"data.corpus": "stdlib"}) == {"data.corpus": "stdlib"}
    assert apply_overrides(load_recipe("tiny-ci"), merged).data.resolved_blend() == {"python-docs": 0.5, "stdlib": 0.5}
