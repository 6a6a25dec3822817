"""In headless Chromium: the runs explorer (filter by a config key, sort by a final metric, select, compare) and
the run page's charts (every metric, x axis and log scale, shared zoom, feature-off panels) and its log."""
import pytest
from django.conf import settings
from django.test import Client

from experiments import services
from experiments.execution.monitor import final_metrics_refresh
from experiments.models import Metric, Run, RunStatus, Study
from tests.experiments.finished_runs import finish_study


def _sign_in(page, user, live_server) -> None:
    page.set_default_timeout(30_000)  # a busy 2-core machine: waits are long, the assertions do not depend on them
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])


@pytest.fixture
def two_studies(pic, make_idea, fast_baseline) -> tuple[Study, Study]:
    lower_lr = make_idea("Lower LR", {"optim.lr": 0.002})
    decay = make_idea("Less weight decay", {"optim.weight_decay": 0.05})
    studies = []
    for idea in (lower_lr, decay):
        study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key],
                                      seeds=[0, 1], max_steps=40)
        finish_study(study, steps=40)
        studies.append(study)
    return studies[0], studies[1]


def _column(page, index: int) -> list[str]:
    return page.locator(f"table.run-table tbody tr td:nth-child({index})").all_inner_texts()


def test_filter_by_a_config_key_sort_select_and_compare(browser_page, live_server, screenshot, pic, two_studies):
    page = browser_page
    lower_lr, _ = two_studies
    _sign_in(page, pic, live_server)

    page.goto("/experiments/runs/")
    assert page.locator("table.run-table tbody tr").count() == 8
    page.fill("#f-where", "optim.lr=0.002")
    page.click("button:has-text('Apply')")
    page.wait_for_url("**where=optim.lr*")
    treated = Run.objects.filter(study=lower_lr, arms__name__startswith="+")
    assert sorted(_column(page, 2)) == sorted(f"{run.public_id}\nseed {run.seed}" for run in treated)

    # Sort by final val loss, then the other way round.
    page.fill("#f-where", "")
    page.click("button:has-text('Apply')")
    page.click("table.run-table th a:has-text('val_loss')")
    page.wait_for_url("**ordering=final.val_loss*")
    headers = [text.strip() for text in page.locator("table.run-table thead th").all_inner_texts()]
    val_column = headers.index("val_loss ▲") + 1
    values = [float(text) for text in _column(page, val_column)]
    assert values == sorted(values) and len(values) == 8
    page.click("table.run-table th a:has-text('val_loss')")
    page.wait_for_url("**ordering=-final.val_loss*")
    assert [float(text) for text in _column(page, val_column)] == sorted(values, reverse=True)
    screenshot(page, "explorer")

    # Add a config column, then select two runs and compare them.
    page.click("summary:has-text('Columns')")
    page.fill("input[name=config_cols]", "optim.lr,optim.weight_decay")
    page.click("button:has-text('Apply')")
    page.wait_for_url("**config_cols=*")
    assert "optim.weight_decay" in page.locator("table.run-table thead").inner_text()
    boxes = page.locator("table.run-table tbody input[type=checkbox]")
    boxes.first.check()  # the worst baseline run (seed 1) ...
    boxes.last.check()  # ... and the best treated run (seed 0)
    page.click("#compare-button")
    page.wait_for_url("**/experiments/runs/compare/**")
    page.wait_for_selector(".chart .main-svg >> nth=0", state="attached")
    assert page.locator("#compare-runs tbody tr").count() == 2
    assert "val_loss" in page.locator("#compare-final").inner_text()
    diff = page.locator("#compare-config tbody").inner_text()
    assert "train.seed" in diff and "optim." in diff
    screenshot(page, "compare")


def test_the_run_page_charts_every_metric_and_reads_the_whole_log(browser_page, live_server, screenshot, pic,
                                                                  two_studies, tmp_path, settings):
    settings.FLIGHTDECK_RUNS_DIR = tmp_path
    page = browser_page
    run = Run.objects.filter(study=two_studies[0], arms__name__startswith="+").first()
    Metric.objects.filter(run=run, name="fp4_error").delete()  # as the trainer logs it: nothing while FP4 is off
    Metric.objects.bulk_create([Metric(run=run, step=step, name="val_loss/wiki", value=3.5 - step / 100)
                                for step in range(10, 41, 10)]
                               + [Metric(run=run, step=step, name="tokens", value=step * 512.0) for step in range(1, 41)])
    final_metrics_refresh(run_id=run.pk)
    attempt = run.attempts.get()
    attempt.log_path.parent.mkdir(parents=True)
    attempt.log_path.write_text("".join(f"step {n} train_loss {3 - n / 100:.3f}\n" for n in range(3000)))
    _sign_in(page, pic, live_server)

    page.goto(f"/experiments/runs/{run.pk}/")
    for name in ("train_loss", "val_loss", "moe_imbalance", "tokens_per_s", "peak_mem_mb", "val_loss/wiki"):
        page.wait_for_selector(f"[data-metric='{name}'] .main-svg", state="attached")
    assert page.locator("[data-metric='fp4_error'] .chart-empty").inner_text() == \
        "FP4 is off in this config (fp4.enabled = false)"
    page.wait_for_function("() => document.getElementById('run-log').textContent.includes('step 2999 ')")
    assert page.locator("#run-log").inner_text().startswith("step 0 train_loss 3.000")
    screenshot(page, "run")

    page.select_option("#chart-x", "tokens")
    page.check("#chart-log")
    page.wait_for_function("() => document.querySelector(\"[data-metric='train_loss'] .panel-chart\").layout.yaxis.type === 'log'")
    title = page.evaluate("() => document.querySelector(\"[data-metric='train_loss'] .panel-chart\").layout.xaxis.title.text")
    assert title == "tokens"
    # Zooming one panel zooms the others.
    page.evaluate("() => Plotly.relayout(document.querySelector(\"[data-metric='train_loss'] .panel-chart\"), "
                  "{'xaxis.range[0]': 2048, 'xaxis.range[1]': 8192})")
    page.wait_for_function("() => { const r = document.querySelector(\"[data-metric='peak_mem_mb'] .panel-chart\")"
                           ".layout.xaxis.range; return r && r[0] === 2048 && r[1] === 8192; }")
    screenshot(page, "run-zoomed")


def test_the_run_page_charts_fill_in_while_the_run_is_live(browser_page, live_server, screenshot, pic, two_studies):
    page = browser_page
    run = Run.objects.filter(study=two_studies[0]).first()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    Metric.objects.filter(run=run, name="train_loss", step__gt=20).delete()
    Metric.objects.filter(run=run, name="grad_norm").delete()
    _sign_in(page, pic, live_server)
    page.goto(f"/experiments/runs/{run.pk}/")
    chart = "document.querySelector(\"[data-metric='train_loss'] .panel-chart\")"
    page.wait_for_function(f"() => {chart}.data && {chart}.data[0].x.length === 20")
    assert page.locator("[data-metric='grad_norm']").count() == 0
    page.evaluate(f"() => Plotly.relayout({chart}, {{'xaxis.range[0]': 5, 'xaxis.range[1]': 15}})")

    # The trainer logs on: more steps, and a metric the page has not seen.
    Metric.objects.bulk_create([Metric(run=run, step=step, name="train_loss", value=3 - step / 100)
                                for step in range(21, 41)]
                               + [Metric(run=run, step=step, name="grad_norm", value=1.0) for step in range(1, 41)])
    page.wait_for_function(f"() => {chart}.data[0].x.length === 40")
    page.wait_for_selector("[data-metric='grad_norm'] .main-svg", state="attached")
    assert page.evaluate(f"() => {chart}.layout.xaxis.range") == [5, 15]  # the redraw kept the zoom
    screenshot(page, "run-live")

    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    page.wait_for_function("() => document.getElementById('run-charts').dataset.live === ''")
