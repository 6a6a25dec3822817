"""The CLI's commands against a live server: tables for people, the same data as JSON, CSV metrics, logs,
and a preview that exits non-zero when the launch would be refused."""
import json

import pytest

from experiments import services as experiment_services
from experiments.models import Attempt, RunStatus
from ideas import services as idea_services
from tests.experiments.finished_runs import finish_study

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(live_server, area, pic, fast_baseline, token_for):
    latent = idea_services.idea_create(submitter=pic, area=area, title="Latent MoE", summary="Smaller router.",
                                       recipe_patch={"moe.latent_size": 32})
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[latent.key],
                                             seeds=[0, 1], max_steps=20)
    finish_study(study, steps=20)
    return {"url": live_server.url, "token": token_for(pic), "idea": latent, "study": study}


@pytest.fixture
def fd(world, flightdeck_cli):
    def run(*args: str, expect: int = 0) -> str:
        result = flightdeck_cli(*args, url=world["url"], token=world["token"])
        assert result.returncode == expect, result.stderr
        return result.stdout

    return run


def test_ideas_as_a_table_and_as_json(fd, world):
    key = world["idea"].key

    table = fd("ideas", "list").splitlines()
    data = json.loads(fd("ideas", "list", "--json"))

    assert table[0].split() == ["KEY", "STATUS", "AREA", "TITLE"]
    # The world's ablation moved the idea along its lifecycle when it launched.
    assert table[1].split()[:3] == [key, "in_ablation", "moe-routing"] and table[1].endswith("Latent MoE")
    assert [idea["key"] for idea in data] == [key]
    shown = fd("ideas", "show", key)
    assert f"key:       {key}" in shown and '{"moe.latent_size": 32}' in shown and "Smaller router." in shown


def test_a_comment_and_a_move(fd, world):
    key = world["idea"].key

    assert fd("ideas", "comment", key, "Worth two more seeds.") == f"Commented on {key}\n"
    assert fd("ideas", "move", key, "in_integration", "--note", "cheap") == f"{key}: in_ablation → in_integration\n"
    assert json.loads(fd("ideas", "show", key, "--json"))["status"] == "in_integration"


def test_a_study_shown_with_its_runs_and_verdict(fd, world):
    study = world["study"]

    text = fd("studies", "show", str(study.pk))
    listed = json.loads(fd("studies", "list", "--json", "--kind", "ablation"))

    assert f"study:       {study.pk}: {study.title}" in text and "status:      succeeded" in text
    assert "ARM" in text and "VS BASELINE" in text and "Verdict:" in text
    assert [s["id"] for s in listed] == [study.pk] and listed[0]["status"] == "succeeded"


def test_watching_a_finished_study_prints_the_results_and_exits_0(fd, world):
    out = fd("studies", "watch", str(world["study"].pk), "--interval", "0.1")

    assert f"Study {world['study'].pk} succeeded." in out and "100%" in out


def test_watching_a_failed_study_exits_1(fd, world):
    world["study"].runs.filter(seed=1).update(status=RunStatus.FAILED)

    out = fd("studies", "watch", str(world["study"].pk), "--json", expect=1)

    assert json.loads(out.splitlines()[-1])["status"] == "failed"


def test_metrics_as_csv_and_logs(fd, world):
    run = world["study"].runs.order_by("id").first()
    attempt = run.attempts.get()
    attempt.log_path.parent.mkdir(parents=True, exist_ok=True)
    attempt.log_path.write_text("step 1 loss 4.2\nstep 2 loss 4.0\n")

    csv_text = fd("runs", "metrics", str(run.pk), "--name", "val_loss", "--csv")
    logs = fd("runs", "logs", str(run.pk), "--follow")  # the attempt has ended: follow stops at the end

    assert csv_text.splitlines()[0] == "step,val_loss" and [line.split(",")[0] for line in csv_text.splitlines()[1:]] == ["10", "20"]
    assert logs == "step 1 loss 4.2\nstep 2 loss 4.0\n"
    assert Attempt.objects.get(pk=attempt.pk).state == RunStatus.SUCCEEDED


def test_an_unknown_metric_names_the_ones_there_are(flightdeck_cli, world):
    run = world["study"].runs.order_by("id").first()

    result = flightdeck_cli("runs", "metrics", str(run.pk), "--name", "val_los", url=world["url"], token=world["token"])

    assert result.returncode == 1 and result.stderr.startswith(f"flightdeck: name: run {run.pk} has no metric 'val_los'")


def test_a_preview_that_cannot_launch_exits_1_and_says_why(fd, world, area, pic):
    fast = idea_services.idea_create(submitter=pic, area=area, title="Fast LR", summary="s", recipe_patch={"optim.lr": 0.01})
    slow = idea_services.idea_create(submitter=pic, area=area, title="Slow LR", summary="s", recipe_patch={"optim.lr": 0.001})

    out = fd("studies", "preview", "--baseline", "tiny-fast", "--ideas", f"{fast.key},{slow.key}", "--steps", "4", expect=1)
    resolved = fd("studies", "preview", "--baseline", "tiny-fast", "--ideas", f"{fast.key},{slow.key}", "--steps", "4",
                  "--resolve", "optim.lr=0.001")

    assert f"optim.lr: {fast.key} sets 0.01, {slow.key} sets 0.001" in out and "Cannot launch:" in out
    assert "Cannot launch" not in resolved and "Runs: 2" in resolved


def test_baselines_and_compute(fd, world):
    assert "tiny-fast  1" in fd("baselines", "list")
    shown = json.loads(fd("baselines", "show", "tiny-fast", "--json"))
    assert shown["config"]["train"]["seq_len"] == 32
    assert fd("compute", "cycles") == "(none)\n"
    assert json.loads(fd("compute", "pools", "--json")) == []


def test_a_request_without_an_open_cycle_says_so(flightdeck_cli, world):
    result = flightdeck_cli("compute", "request", "--area", "moe-routing", "--pool", "h100", "--hours", "5",
                            "--justification", "Because.", url=world["url"], token=world["token"])

    assert result.returncode == 1
    assert result.stderr == "flightdeck: no cycle is open for requests now; name one with --cycle\n"


