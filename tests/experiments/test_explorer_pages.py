"""The runs explorer and compare pages, notes and tags: pinned query counts, bad input answered on the page."""
import pytest
from django.test import Client

from experiments import services
from experiments.models import Run, RunStatus, RunTag, Study
from tests.experiments.finished_runs import finish_study


@pytest.fixture
def finished(pic, make_idea, fast_baseline) -> Study:
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0, 1], max_steps=20)
    finish_study(study, steps=20)
    return study


def test_the_explorer_costs_the_same_queries_for_few_runs_or_many(web, pic, finished, make_idea,
                                                                   django_assert_num_queries):
    # session, user, hidden studies (visibility), count, the page's ids, its runs, arms, tags, inbox badge
    with django_assert_num_queries(9):
        assert web.get("/experiments/runs/").content.count(b'name="ids"') == 4
    more = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                 ideas=[make_idea("Decay", {"optim.weight_decay": 0.05}).key], seeds=list(range(8)),
                                 max_steps=20)
    finish_study(more, steps=20)
    RunTag.objects.bulk_create([RunTag(run=run, name="keep") for run in Run.objects.all()])
    with django_assert_num_queries(9):
        html = web.get("/experiments/runs/", {"config_cols": "optim.lr", "ordering": "-final.val_loss",
                                              "cols": ["study", "tags"], "columns": "1"}).content.decode()
    assert html.count('name="ids"') == 20 and html.count(">keep</a>") == 20


def test_config_filters_and_sorting_on_the_page(web, finished):
    treated = Run.objects.filter(study=finished, arms__name__startswith="+")

    html = web.get("/experiments/runs/", {"where": "optim.lr=0.002 train.seed=1"}).content.decode()

    assert [run.public_id for run in treated if run.seed == 1][0] in html
    assert html.count('name="ids"') == 1
    assert 'value="optim.lr=0.002 train.seed=1"' in html  # the filter box keeps what was typed


@pytest.mark.parametrize("params, message", [
    ({"where": "optim.lr"}, "write a config filter as &lt;dotted key&gt;=&lt;value&gt;"),
    ({"status": "bogus"}, "unknown status &#x27;bogus&#x27;"),
    ({"ordering": "-nonsense"}, "cannot order by &#x27;-nonsense&#x27;"),
])
def test_bad_filters_are_named_on_the_page(web, finished, params, message):
    response = web.get("/experiments/runs/", params)

    assert response.status_code == 400 and message in response.content.decode()


def test_the_compare_page_and_its_errors(web, finished):
    ids = list(Run.objects.filter(study=finished).order_by("id").values_list("pk", flat=True))

    html = web.get("/experiments/runs/compare/", {"ids": ids[:3]}).content.decode()
    assert "optim.lr" in html and "train.seed" in html and html.count('class="chart"') >= 5

    assert web.get("/experiments/runs/compare/").status_code == 400
    assert web.get("/experiments/runs/compare/", {"ids": "999999"}).status_code == 404


def test_notes_and_tags_by_the_launcher_and_not_by_outsiders(web, finished, outsider):
    run = Run.objects.filter(study=finished).first()
    url = f"/experiments/runs/{run.pk}/annotate/"

    response = web.post(url, {"notes": "Loss spike at 12.", "tags": "spike keep"})
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.notes, run.tag_names) == ("Loss spike at 12.", ["keep", "spike"])
    assert "Loss spike at 12." in web.get(f"/experiments/runs/{run.pk}/").content.decode()

    bad = web.post(url, {"notes": "typed", "tags": "ok no/slashes"})
    assert bad.status_code == 400 and "tag &#x27;no/slashes&#x27;" in bad.content.decode()
    assert "typed" in bad.content.decode()

    stranger = Client()
    stranger.force_login(outsider)
    refused = stranger.post(url, {"notes": "mine now", "tags": ""})
    assert refused.status_code == 400 and "may edit its runs" in refused.content.decode()
    run.refresh_from_db()
    assert run.notes == "Loss spike at 12."


def test_the_run_page_explains_an_empty_fp4_chart(web, finished):
    run = Run.objects.filter(study=finished).first()
    run.metrics.filter(name="fp4_error").delete()

    html = web.get(f"/experiments/runs/{run.pk}/").content.decode()

    assert "FP4 is off in this config (fp4.enabled = false)" in html
    assert "Nothing logged yet" not in html.split('data-metric="fp4_error"')[1].split("</div>")[1]


def test_the_panels_poll_serves_the_run_page_series_and_says_when_to_stop(web, finished):
    run = Run.objects.filter(study=finished).first()
    run.metrics.filter(name="fp4_error").delete()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)

    payload = web.get(f"/experiments/runs/{run.pk}/panels/").json()

    assert payload["live"] is True
    panels = {panel["name"]: panel for panel in payload["panels"]}
    assert panels["train_loss"]["series"]["step"][-1] == 20
    assert panels["fp4_error"] == {"name": "fp4_error", "title": "FP4 quantisation error", "series": None,
                                   "empty": "FP4 is off in this config (fp4.enabled = false)"}
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert web.get(f"/experiments/runs/{run.pk}/panels/").json()["live"] is False
    assert web.get("/experiments/runs/999999/panels/").status_code == 404  # hidden runs: the permission walk
