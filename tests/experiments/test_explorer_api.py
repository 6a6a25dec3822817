"""GET /api/v1/runs/ (every filter and ordering, `final`, visibility, bad parameters named, a pinned query count),
GET /api/v1/runs/compare/, a run's logs and metrics with any name."""
import pytest
from django.db import connection

from experiments import explorer, services
from experiments.execution.monitor import final_metrics_refresh
from experiments.models import Arm, Metric, Run, Study
from experiments.visibility import run_q
from ideas import services as idea_services
from ideas.models import Area
from tests.experiments.finished_runs import finish_study
from tests.experiments.helpers import api_client_for


@pytest.fixture
def studies(pic, volunteer, make_idea, fast_baseline) -> tuple[Study, Study]:
    """A finished ablation of a lower learning rate (seeds 0 and 1: four runs) launched by the PIC, and a
    queued ablation of latent MoE (seed 0: two runs) launched by the volunteer."""
    lower_lr = make_idea("Lower LR for stochastic FP4 gradients", {"optim.lr": 0.002})
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    finished = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[lower_lr.key],
                                     seeds=[0, 1], max_steps=50)
    finish_study(finished)
    queued = services.study_launch(user=volunteer, kind="ablation", baseline="tiny-fast", ideas=[latent.key],
                                   seeds=[0], max_steps=50)
    return finished, queued


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["results"]]


def _runs(**filters) -> list[int]:
    return sorted(Run.objects.filter(**filters).values_list("pk", flat=True))


# ------------------------------------------------------------------------------------------------- filters


def test_every_item_carries_final_metrics_and_where_it_comes_from(api, studies):
    finished, _ = studies
    body = api.get("/api/v1/runs/", {"study": finished.pk}).json()

    assert body["count"] == 4
    item = body["results"][0]
    assert set(item["final"]) == {"train_loss", "val_loss", "tokens_per_s", "peak_mem_mb", "moe_imbalance", "fp4_error"}
    run = Run.objects.get(pk=item["id"])
    last_val = Metric.objects.filter(run=run, name="val_loss").order_by("-step").first().value
    assert item["final"]["val_loss"] == pytest.approx(last_val)
    assert item["final"]["peak_mem_mb"] == 562.0  # 512 + step 50
    assert (item["study"], item["baseline"], item["launcher"]) == (finished.pk, "tiny-fast@1", "pia")
    assert item["url"] == f"/experiments/runs/{item['id']}/"


def test_config_filters_match_resolved_values_of_any_type(api, studies):
    finished, queued = studies
    treated = _runs(study=finished, arms__name__startswith="+")

    assert sorted(_ids(api.get("/api/v1/runs/", {"config.optim.lr": "0.002"}))) == treated
    assert sorted(_ids(api.get("/api/v1/runs/", {"config.optim.lr": "2e-3"}))) == treated  # same number
    assert sorted(_ids(api.get("/api/v1/runs/", {"config.train.seed": "0"}))) == _runs(seed=0)
    assert sorted(_ids(api.get("/api/v1/runs/", {"config.moe.latent_size": "32"}))) == _runs(study=queued, arms__name__startswith="+")
    combined = api.get("/api/v1/runs/", {"config.optim.lr": "0.002", "config.train.seed": "1"})
    assert _ids(combined) == _runs(study=finished, arms__name__startswith="+", seed=1)
    assert _ids(api.get("/api/v1/runs/", {"config.fp4.enabled": "true"})) == []  # a boolean, not the string
    assert len(_ids(api.get("/api/v1/runs/", {"config.fp4.enabled": "false"}))) == 6
    assert len(_ids(api.get("/api/v1/runs/", {"config.data.tokenizer": "byte"}))) == 6  # a string


def test_field_filters(api, studies, volunteer):
    finished, queued = studies
    lower_lr_key = finished.study_ideas.get().idea.key
    run = Run.objects.filter(study=finished).first()
    services.run_annotate(run=run, user=volunteer, notes="the stochastic rounding check", tags=["keep", "fp4"])

    assert sorted(_ids(api.get("/api/v1/runs/", {"study": queued.pk}))) == _runs(study=queued)
    assert sorted(_ids(api.get("/api/v1/runs/", {"idea": lower_lr_key}))) == _runs(study=finished)
    assert len(_ids(api.get("/api/v1/runs/", {"area": "moe-routing"}))) == 6
    assert _ids(api.get("/api/v1/runs/", {"area": "no-such-area"})) == []
    assert len(_ids(api.get("/api/v1/runs/", {"baseline": "tiny-fast"}))) == 6
    assert len(_ids(api.get("/api/v1/runs/", {"baseline": "tiny-fast@1"}))) == 6
    assert _ids(api.get("/api/v1/runs/", {"baseline": "tiny-fast@2"})) == []
    assert sorted(_ids(api.get("/api/v1/runs/", {"status": "queued"}))) == _runs(study=queued)
    assert len(_ids(api.get("/api/v1/runs/", {"status": "queued,succeeded"}))) == 6
    assert sorted(_ids(api.get("/api/v1/runs/", {"launcher": "vic"}))) == _runs(study=queued)
    assert _ids(api.get("/api/v1/runs/", {"tag": "keep"})) == [run.pk]
    assert _ids(api.get("/api/v1/runs/", {"tag": "kee"})) == []


def test_search_needs_every_word_somewhere(api, studies):
    finished, _ = studies
    run = Run.objects.filter(study=finished).first()

    assert len(_ids(api.get("/api/v1/runs/", {"search": "stochastic fp4 gradients"}))) == 4  # study title words
    assert _ids(api.get("/api/v1/runs/", {"search": "stochastic latent"})) == []  # each word in some run, not one
    assert _ids(api.get("/api/v1/runs/", {"search": run.public_id.upper()})) == [run.pk]
    key = finished.study_ideas.get().idea.key
    assert len(_ids(api.get("/api/v1/runs/", {"search": key.lower()}))) == 4


# ------------------------------------------------------------------------------------------------ ordering


def test_ordering_by_final_metrics_puts_runs_without_the_metric_last(api, studies):
    finished, queued = studies
    by_value = sorted(Run.objects.filter(study=finished), key=lambda run: run.final_metrics["val_loss"])
    unlogged = _runs(study=queued)

    ascending = _ids(api.get("/api/v1/runs/", {"ordering": "final.val_loss"}))
    assert ascending[:4] == [run.pk for run in by_value] and sorted(ascending[4:]) == unlogged
    descending = _ids(api.get("/api/v1/runs/", {"ordering": "-final.val_loss"}))
    assert descending[:4] == [run.pk for run in reversed(by_value)] and sorted(descending[4:]) == unlogged


def test_ordering_by_fields_and_config_values(api, studies):
    assert _ids(api.get("/api/v1/runs/")) == sorted(_runs(), reverse=True)  # newest first by default
    assert _ids(api.get("/api/v1/runs/", {"ordering": "id"})) == _runs()
    steps = [Run.objects.get(pk=pk).step for pk in _ids(api.get("/api/v1/runs/", {"ordering": "-step"}))]
    assert steps == sorted(steps, reverse=True) and steps[0] == 50
    for field in ("created_at", "started_at", "finished_at", "status", "tokens", "tokens_per_s", "gpu_hours", "seed",
                  "study"):
        assert len(_ids(api.get("/api/v1/runs/", {"ordering": f"-{field}"}))) == 6, field
    lrs = [Run.objects.get(pk=pk).config_flat["optim.lr"] for pk in _ids(api.get("/api/v1/runs/",
                                                                                 {"ordering": "config.optim.lr"}))]
    assert lrs == sorted(lrs) and lrs[0] == 0.002


def test_a_metric_name_with_a_slash_orders_and_charts(api, studies):
    finished, _ = studies
    runs = list(Run.objects.filter(study=finished).order_by("id"))
    Metric.objects.bulk_create([Metric(run=run, step=50, name="val_loss/wiki", value=3.0 - index)
                                for index, run in enumerate(runs)])
    for run in runs:
        final_metrics_refresh(run_id=run.pk)

    assert _ids(api.get("/api/v1/runs/", {"study": finished.pk, "ordering": "final.val_loss/wiki"}))[0] == runs[-1].pk
    series = api.get(f"/api/v1/runs/{runs[0].pk}/metrics/", {"name": "val_loss/wiki"}).json()
    assert series["points"] == [[50, 3.0]]


# ------------------------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize("params, name, message", [
    ({"colour": "blue"}, "colour", "unknown parameter 'colour'; allowed: study, idea"),
    ({"status": "bogus"}, "status", "unknown status 'bogus'; allowed: queued"),
    ({"study": "first"}, "study", "study must be a study id"),
    ({"ordering": "-wobble"}, "ordering", "cannot order by '-wobble'"),
    ({"ordering": "final.val loss"}, "ordering", "cannot order by 'final.val loss'"),
    ({"config.optim lr": "1"}, "config.optim lr", "config filters look like config.<dotted key>=<value>"),
])
def test_bad_parameters_are_a_400_naming_them(api, studies, params, name, message):
    response = api.get("/api/v1/runs/", params)

    assert response.status_code == 400
    assert message in " ".join(response.json()[name])


# ---------------------------------------------------------------------------------------- visibility, cost


def test_runs_of_a_restricted_area_are_hidden_from_outsiders(api, studies, make_user):
    outsider = api_client_for(make_user("olga"))
    Area.objects.filter(slug="moe-routing").update(restricted=True)

    assert _ids(outsider.get("/api/v1/runs/")) == []
    assert len(_ids(api.get("/api/v1/runs/"))) == 6  # the PIC still sees them
    finished, _ = studies
    ids = ",".join(str(pk) for pk in _runs(study=finished)[:2])
    assert outsider.get("/api/v1/runs/compare/", {"ids": ids}).status_code == 404


def test_the_list_costs_the_same_queries_for_two_runs_or_many(api, pic, studies, make_idea, django_assert_num_queries):
    # session auth is off (force_authenticate): hidden studies (visibility), count, the page's ids, its runs,
    # arms, tags
    with django_assert_num_queries(6):
        assert len(_ids(api.get("/api/v1/runs/", {"study": studies[1].pk}))) == 2
    more = make_idea("Weight decay", {"optim.weight_decay": 0.05})
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[more.key],
                                  seeds=[0, 1, 2, 3, 4, 5], max_steps=50)
    finish_study(study)
    with django_assert_num_queries(6):
        assert len(_ids(api.get("/api/v1/runs/", {"ordering": "-final.val_loss", "config.train.seed": "0"}))) == 6
    with django_assert_num_queries(6):
        assert len(_ids(api.get("/api/v1/runs/"))) == 18


# ------------------------------------------------------------------------------------------------- compare


def test_compare_lists_only_differing_config_keys_and_finals_side_by_side(api, studies):
    finished, _ = studies
    baseline_run = Run.objects.get(study=finished, arms__name="baseline", seed=0)
    treated = Run.objects.get(study=finished, arms__name__startswith="+", seed=1)

    body = api.get("/api/v1/runs/compare/", {"ids": f"{treated.pk},{baseline_run.pk}"}).json()

    assert [run["id"] for run in body["runs"]] == [treated.pk, baseline_run.pk]
    assert body["config_diff"] == {"optim.lr": [0.002, baseline_run.config_flat["optim.lr"]], "train.seed": [1, 0]}
    assert body["final"]["val_loss"] == [treated.final_metrics["val_loss"], baseline_run.final_metrics["val_loss"]]


@pytest.mark.parametrize("ids, status, message", [
    ("", 400, "ids must be run ids separated by commas"),
    ("1,x", 400, "ids must be run ids separated by commas"),
    (",".join(str(n) for n in range(1, 22)), 400, "compare takes at most 20 runs, got 21"),
    ("999999", 404, "no run 999999"),
])
def test_compare_refuses_bad_ids(api, studies, ids, status, message):
    response = api.get("/api/v1/runs/compare/", {"ids": ids})

    assert response.status_code == status
    assert message in str(response.json())


def test_a_run_shared_into_a_visible_study_stays_visible_in_the_list(studies, make_user, staff):
    """run_list_q agrees with run_q: a hidden study's run that an arm of a visible study shares is listed."""
    secret = idea_services.area_create(slug="secret", name="Secret", pic=staff, by=staff, restricted=True)
    idea = idea_services.idea_create(submitter=staff, area=secret, title="Hidden", summary="Why.",
                                     recipe_patch={"optim.lr": 0.004})
    hidden_study = services.study_launch(user=staff, kind="ablation", baseline="tiny-fast", seeds=[0], max_steps=4,
                                         ideas=[idea.key])
    shared = hidden_study.runs.first()
    Arm.objects.filter(study=studies[0], name="baseline").get().runs.add(shared)
    outsider = make_user("olga")

    listed = set(_ids(api_client_for(outsider).get("/api/v1/runs/", {"ordering": "id"})))
    assert listed == set(Run.objects.filter(run_q(outsider)).values_list("pk", flat=True))
    assert shared.pk in listed and not listed & set(hidden_study.runs.exclude(pk=shared.pk).values_list("pk", flat=True))


@pytest.mark.parametrize("ordering", ["-id", "final.val_loss", "-config.optim.lr", "started_at"])
def test_pages_found_by_id_first_are_the_ordered_list_cut_in_pages(pic, studies, ordering):
    runs = explorer.runs_explore(user=pic, query=explorer.RunQuery(ordering=ordering))
    paginator = explorer.RunPaginator(runs, 4)

    paged = [run.pk for number in paginator.page_range for run in paginator.page(number).object_list]

    assert paged == [run.pk for run in runs] and len(paged) == 6
    assert [len(paginator.page(number).object_list) for number in paginator.page_range] == [4, 2]


@pytest.mark.parametrize("ordering, index", [
    ("config.optim.lr", "experiments_run_config_optim_lr_asc"),
    ("-config.train.seed", "experiments_run_config_train_seed_desc"),
    ("-final.val_loss", "experiments_run_final_val_loss_desc"),
])
def test_sorts_on_indexed_json_keys_can_walk_their_index(pic, studies, ordering, index):
    """The ORDER BY must spell each index's expression exactly, or PostgreSQL sorts every run instead."""
    if connection.vendor != "postgresql":
        pytest.skip("expression indexes exist on PostgreSQL only")
    runs = explorer.runs_explore(user=pic, query=explorer.RunQuery(ordering=ordering)).values_list("pk")[:50]
    sql, params = runs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of rows would otherwise be scanned anyway
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
