"""The corpora page and GET /api/v1/corpora/: every registered corpus with kind, size, files, split, tokens per
tokenizer and who may use it; signed-in users only; documented in the OpenAPI schema."""
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from modelzoo.config import DataConfig
from modelzoo.data import build_blend

CORPORA = "/api/v1/corpora/"


@pytest.fixture
def corpora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator folder ``team-notes`` and a data cache holding a byte-tokenized build of it."""
    registered, cache = tmp_path / "registered", tmp_path / "cache"
    notes = registered / "team-notes"
    notes.mkdir(parents=True)
    for index in range(6):
        (notes / f"note{index}.md").write_text(f"# note {index}\n" + "the mixture matters\n" * (10 + index))
    monkeypatch.setenv("FLIGHTDECK_CORPORA_DIR", str(registered))
    monkeypatch.setenv("FLIGHTDECK_DATA_CACHE", str(cache))
    build_blend(DataConfig(corpus="team-notes", val_fraction=0.3))
    return notes


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_lists_every_corpus_with_its_figures(corpora: Path, pic) -> None:
    response = _api(pic).get(CORPORA)
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert {"stdlib", "python-docs", "debian-copyright", "manpages", "team-notes"} <= set(rows)
    notes = rows["team-notes"]
    size = sum(p.stat().st_size for p in corpora.iterdir())
    assert (notes["origin"], notes["kind"], notes["built"], notes["size_bytes"]) == ("registered", "text", True, size)
    assert notes["files"] == 6 and notes["train_files"] + notes["val_files"] == 6 and notes["val_files"] >= 1
    assert notes["tokens"]["byte"]["train"] + notes["tokens"]["byte"]["val"] == size + 6  # bytes + separators
    assert notes["usable_by"] == "everyone"


def test_the_api_filters_by_origin_and_kind_and_names_bad_filters(corpora: Path, pic) -> None:
    api = _api(pic)
    assert [r["name"] for r in api.get(CORPORA, {"origin": "registered"}).json()["results"]] == ["team-notes"]
    assert {r["name"] for r in api.get(CORPORA, {"kind": "prose"}).json()["results"]} == {"python-docs", "debian-copyright"}
    response = api.get(CORPORA, {"origin": "anywhere"})
    assert response.status_code == 400 and "origin" in response.json()
    response = api.get(CORPORA, {"path": "/etc"})
    assert response.status_code == 400 and "unknown field" in str(response.json()["path"])


def test_the_api_and_the_page_need_a_signed_in_user(corpora: Path) -> None:
    assert APIClient().get(CORPORA).status_code in (401, 403)
    response = Client().get("/experiments/corpora/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_shows_each_corpus_and_tokens_per_tokenizer(corpora: Path, web: Client) -> None:
    response = web.get("/experiments/corpora/")
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("stdlib", "python-docs", "debian-copyright", "manpages", "team-notes"):
        assert f'<span class="mono">{name}</span>' in page
    assert "not built yet" in page  # the built-ins: this cache has only team-notes
    assert '<span class="mono">byte</span>' in page and "everyone" in page


def test_the_schema_documents_the_corpora_endpoint(pic) -> None:
    response = _api(pic).get("/api/v1/schema/")
    assert response.status_code == 200 and b"/api/v1/corpora/" in response.content and b"usable_by" in response.content
