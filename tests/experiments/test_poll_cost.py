"""The fragments a study page and a run page poll every 2 s load only what they show (issue 7's mixed load:
a quarter of all requests), and render exactly what they rendered from the full study and run loads."""
import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory

from experiments import selectors, services, views
from experiments.models import Run, RunStatus, Study
from ideas.models import Area
from tests.experiments.finished_runs import finish_study


@pytest.fixture
def live_study(pic, make_idea, fast_baseline) -> Study:
    """A running ablation: one run halfway with an ETA, the others queued."""
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Wider", {"moe.intermediate_size": 96}).key], seeds=[0, 1],
                                  max_steps=40)
    running = study.runs.order_by("id").first()
    Run.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING, step=20, eta_seconds=95.0, tokens=4096,
                                             tokens_per_s=512.0)
    return study


def _request(user, path: str):
    request = RequestFactory().get(path, {"smooth": "0"}, HTTP_HX_REQUEST="true")
    request.user = user
    return request


def test_the_progress_poll_renders_what_the_full_study_load_renders(web, pic, live_study, django_assert_num_queries):
    with django_assert_num_queries(6):  # session, user, study, its runs, its arms, the arms' runs
        response = web.get(f"/experiments/studies/{live_study.pk}/progress/")

    full = views._progress_context(selectors.study_detail(live_study.pk, user=pic))
    html = response.content.decode()
    assert response.status_code == 200
    assert html == render_to_string("experiments/_study_progress.html", full)
    assert "step 20 / 40" in html and 'hx-trigger="every 2s"' in html


def test_the_results_poll_renders_what_the_full_study_load_renders(web, pic, pic_area_finished_study,
                                                                  django_assert_num_queries):
    study = pic_area_finished_study
    path = f"/experiments/studies/{study.pk}/results/"
    web.get(path, {"smooth": "0"})  # the charts are cached after the first draw, as for the full load below
    with django_assert_num_queries(7):  # session, user, study, runs, arms, arm runs, final values
        response = web.get(path, {"smooth": "0"})

    request = _request(pic, path)
    full = views._results_context(request, selectors.study_detail(study.pk, user=pic), live=False)
    assert response.status_code == 200
    assert response.content.decode() == render_to_string("experiments/_study_results.html", full, request)
    assert "val loss" in response.content.decode()


def test_the_run_live_poll_renders_what_the_full_run_load_renders(web, pic, live_study, django_assert_num_queries):
    run = live_study.runs.get(status=RunStatus.RUNNING)
    with django_assert_num_queries(4):  # session, user, run, its attempts
        response = web.get(f"/experiments/runs/{run.pk}/live/")

    full = views._run_live_context(selectors.run_detail(run.pk, user=pic))
    html = response.content.decode()
    assert response.status_code == 200
    assert html == render_to_string("experiments/_run_live.html", full)
    assert 'class="stat">20 <span' in html


def test_the_polls_still_hide_a_restricted_areas_study_and_runs(pic, live_study, outsider):
    Area.objects.filter(pk=live_study.study_ideas.get().idea.area_id).update(restricted=True)
    client = Client()
    client.force_login(outsider)
    run = live_study.runs.first()

    for path in (f"/experiments/studies/{live_study.pk}/progress/", f"/experiments/studies/{live_study.pk}/results/",
                 f"/experiments/runs/{run.pk}/live/"):
        assert client.get(path).status_code == 404, path


@pytest.fixture
def pic_area_finished_study(pic, make_idea, fast_baseline) -> Study:
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Deeper", {"moe.intermediate_size": 96}).key], seeds=[0, 1], max_steps=20)
    finish_study(study)
    return study
