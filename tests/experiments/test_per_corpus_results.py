"""Per-corpus validation losses of a blend study: verdicts on each corpus on the study page and through
``GET /api/v1/studies/<id>/?metric=``, and one validation-loss chart per corpus."""
import json

import pytest
from rest_framework.test import APIClient

from experiments import services
from experiments.charts import study_charts
from experiments.results import study_results, study_results_with_corpora
from experiments.selectors import study_detail
from tests.experiments.finished_runs import finish_study

CORPORA = ("python-docs", "stdlib")


@pytest.fixture
def blend_ablation(pic, make_idea, fast_baseline):
    idea = make_idea("More docs in the mix", {"data.blend": {"stdlib": 0.5, "python-docs": 0.5}})
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0, 1, 2],
                                  max_steps=50)
    finish_study(study, corpora=CORPORA)
    return idea, study


def test_a_verdict_is_computed_on_each_corpus(blend_ablation, pic) -> None:
    idea, study = blend_ablation
    study = study_detail(study.pk, user=pic)
    overall, per_corpus = study_results_with_corpora(study)
    assert overall.verdict == study_results(study).verdict
    by_metric = {result.metric: result for result in per_corpus}
    assert list(by_metric) == ["val_loss/python-docs", "val_loss/stdlib"]
    (docs,), (code,) = by_metric["val_loss/python-docs"].verdict, by_metric["val_loss/stdlib"].verdict
    assert docs.startswith(f"+{idea.key} beats baseline by") and docs.endswith("val_loss/python-docs over 3 seeds")
    assert code.startswith(f"+{idea.key} is worse than baseline by") and "val_loss/stdlib" in code
    assert study_results(study).metric_label == "val loss"


def test_the_study_page_shows_per_corpus_verdicts_and_charts(blend_ablation, web, pic) -> None:
    idea, study = blend_ablation
    page = web.get(f"/experiments/studies/{study.pk}/").content.decode()
    assert 'id="corpus-verdicts"' in page and "val_loss/python-docs over 3 seeds" in page
    for corpus in CORPORA:
        assert f'id="chart-val_loss-{corpus}"' in page and f"Validation loss on {corpus}" in page
    charts = {chart.name: chart for chart in study_charts(study_detail(study.pk, user=pic), study_results(study).arms)}
    figure = charts["val_loss-python-docs"].figure
    assert {trace.get("name") for trace in figure["data"]} >= {"baseline (n=3)", f"+{idea.key} (n=3)"}
    json.dumps(figure)  # what the page embeds


def test_a_study_without_a_blend_has_no_per_corpus_section(pic, make_idea, fast_baseline, web) -> None:
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0], max_steps=20)
    finish_study(study, steps=20, corpora=("stdlib",))  # one corpus: its loss is val_loss itself
    page = web.get(f"/experiments/studies/{study.pk}/").content.decode()
    assert 'id="corpus-verdicts"' not in page and "chart-val_loss-stdlib" not in page


def test_the_api_answers_a_verdict_on_any_logged_loss(blend_ablation, pic) -> None:
    idea, study = blend_ablation
    api = APIClient()
    api.force_authenticate(pic)
    url = f"/api/v1/studies/{study.pk}/"
    body = api.get(url, {"metric": "val_loss/stdlib"}).json()
    assert body["metric"] == "val_loss/stdlib" and "is worse than baseline" in body["verdict"][0]
    assert api.get(url).json()["metric"] == "val_loss"
    response = api.get(url, {"metric": "val_loss/manpages"})
    assert response.status_code == 400
    assert response.json()["metric"] == [f"study {study.pk} has no loss metric 'val_loss/manpages'; it has "
                                         "train_loss, val_loss, val_loss/python-docs, val_loss/stdlib"]
