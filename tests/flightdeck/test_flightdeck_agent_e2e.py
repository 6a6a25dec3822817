"""An agent drives Flightdeck end to end through the `flightdeck` CLI only — separate processes talking HTTP
to real gunicorn, with a real Celery worker training the real tiny trainer on Redis and PostgreSQL: submit
two ideas, preview and launch an integration study inside the area's grant, watch it to the end, read the
verdict, the logs, the metrics and the compare output, and ask for more compute. Only the world the agent
starts in (people, area, baseline, pool, grant, token) is made through the services."""
import csv
import io
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import services as account_services
from compute import services as compute_services
from compute.cycles import Calendar
from compute.models import Pool, Request
from experiments.models import RunStatus, Study

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def agent_world(area, pic, make_user, fast_baseline):
    """The area's PIC with a token, and 50 GPU-hours granted to the area in the current (published) cycle
    of pool h100 (the default pool studies are charged to); the cycle after next is open for requests."""
    reviewer = make_user("rita", reviewer=True)
    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    calendar, now = Calendar.from_settings(), timezone.now()
    current = compute_services.cycle_ensure(window=calendar.window_containing(now), now=now)
    assert current.phase == "published"
    compute_services.allocation_set(cycle=current, pool=pool, area=area, gpu_hours=Decimal("50"), actor=reviewer)
    upcoming = compute_services.cycle_ensure(window=calendar.window_after(calendar.window_after(current.window)),
                                             now=now)
    assert upcoming.phase == "open"
    return account_services.api_token_create(owner=pic, name="research agent").secret, upcoming


def test_an_agent_runs_the_research_loop_through_the_cli(gunicorn_server, celery_worker, flightdeck_cli,
                                                         agent_world, area):
    token, upcoming = agent_world
    server = gunicorn_server(workers=2)

    def fd(*args: str, expect: int = 0) -> str:
        result = flightdeck_cli(*args, url=server.url, token=token, timeout=300)
        assert result.returncode == expect, f"flightdeck {' '.join(args)}: {result.stderr}{result.stdout[-2000:]}"
        assert "Traceback" not in result.stderr
        return result.stdout

    def fd_json(*args: str):
        return json.loads(fd(*args, "--json"))

    # 1. Two ideas, their patches in the web form's `key = value` lines.
    latent = fd_json("ideas", "submit", "--area", area.slug, "--title", "Latent MoE routing",
                     "--summary", "Route in a smaller latent space.", "--patch", "moe.latent_size = 32")
    lower_lr = fd_json("ideas", "submit", "--area", area.slug, "--title", "Lower peak LR",
                       "--summary", "Less noise late in training.", "--patch", "optim.lr = 0.002")
    assert latent["recipe_patch"] == {"moe.latent_size": 32} and lower_lr["recipe_patch"] == {"optim.lr": 0.002}
    keys = f"{latent['key']},{lower_lr['key']}"
    listed = fd_json("ideas", "list", "--area", area.slug)
    assert {idea["key"] for idea in listed} == {latent["key"], lower_lr["key"]}

    # 2. Preview: the plan and the grant, nothing created.
    study_args = ["--baseline", "tiny-fast", "--ideas", keys, "--seeds", "0,1", "--steps", "4", "--kind", "integration"]
    plan = fd_json("studies", "preview", *study_args)
    assert [arm["name"] for arm in plan["arms"]] == ["baseline", "all"] and plan["run_count"] == 4
    assert plan["composed_patch"] == {"moe.latent_size": 32, "optim.lr": 0.002}
    assert plan["launchable"] and plan["budget"]["covered"] and plan["budget"]["grant"].startswith("the MoE routing")
    assert not Study.objects.exists()
    assert "Runs: 4" in fd("studies", "preview", *study_args)  # the same plan as a table

    # 3. Launch; a retry with the same idempotency key gets the same study instead of a second one.
    study = fd_json("studies", "launch", *study_args, "--idempotency-key", "agent-loop-1")
    again = fd_json("studies", "launch", *study_args, "--idempotency-key", "agent-loop-1")
    assert again["id"] == study["id"] and Study.objects.count() == 1

    # 4. Watch to the end: progress lines, then the verdict; exit 0 because every run succeeded.
    watched = fd("studies", "watch", str(study["id"]), "--interval", "1", "--timeout", "280")
    assert f"Study {study['id']} succeeded." in watched and "Verdict:" in watched and "[" in watched
    final = fd_json("studies", "show", str(study["id"]))
    assert final["status"] == "succeeded" and final["verdict"]
    assert {run["status"] for run in final["runs"]} == {RunStatus.SUCCEEDED}
    all_arm = next(arm for arm in final["arms"] if arm["name"] == "all")
    assert all_arm["seed_stats"]["n"] == 2 and all_arm["vs_baseline"] is not None
    listed_studies = fd_json("studies", "list", "--idea", latent["key"], "--status", "succeeded")
    assert [s["id"] for s in listed_studies] == [study["id"]]

    # 5. Evidence of one run: its log and its validation loss.
    baseline_run = next(arm for arm in final["arms"] if arm["name"] == "baseline")["runs"][0]
    treated_run = all_arm["runs"][0]
    assert fd("runs", "logs", str(treated_run)).strip()
    rows = list(csv.reader(io.StringIO(fd("runs", "metrics", str(treated_run), "--name", "val_loss", "--csv"))))
    assert rows[0] == ["step", "val_loss"] and [int(row[0]) for row in rows[1:]] == [2, 4]

    # 6. Ask for compute for the scale-up, citing the study.
    study_url = f"{server.url}/experiments/studies/{study['id']}/"
    request = fd_json("compute", "request", "--area", area.slug, "--pool", "h100", "--hours", "12.5", "--stage",
                      "scale-up", "--justification", "Integration of both ideas beat the baseline.",
                      "--evidence", study_url)
    assert request["cycle"] == upcoming.pk and request["gpu_hours"] == 12.5 and request["status"] == "open"
    assert Request.objects.get(pk=request["id"]).evidence_links == [study_url]
    mine = fd_json("compute", "requests", "--area", area.slug, "--cycle", str(upcoming.pk))
    assert [r["id"] for r in mine] == [request["id"]]
    usage = fd_json("compute", "usage")
    assert usage["total_gpu_hours"] > 0  # the four runs were charged to the area's grant

    # 7. Compare the baseline and the treated run of seed 0, and find runs by config (issue 13's endpoints).
    probe = flightdeck_cli("runs", "compare", str(baseline_run), str(treated_run), "--json", url=server.url,
                           token=token)
    assert probe.returncode == 0, probe.stderr
    comparison = json.loads(probe.stdout)
    assert comparison["config_diff"]["moe.latent_size"][1] == 32 and "val_loss" in comparison["final"]
    runs = fd_json("runs", "list", "--study", str(study["id"]), "--config", "moe.latent_size=32",
                   "--ordering", "final.val_loss")
    assert len(runs) == 2 and {run["id"] for run in runs} == set(all_arm["runs"])
    assert runs[0]["final"]["val_loss"] <= runs[1]["final"]["val_loss"]
