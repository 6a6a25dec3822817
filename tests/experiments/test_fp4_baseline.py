"""The NVFP4 production baseline in the demo: the FP4 area's ideas run against it and change its FP4 knobs, and
the study page's FP4 chart shows its quantisation error (or says that FP4 is off)."""
import io

from experiments import charts, demo, services
from experiments.planning import plan_study
from ideas.demo import seed as seed_ideas
from modelzoo.config import load_recipe
from tests.experiments.finished_runs import finish_study

FP4_KNOBS = ("enabled", "rht", "stochastic_rounding", "weight_2d_blocks", "bf16_first_layers", "bf16_last_layers")


def test_the_production_recipe_is_nvfp4_on_a_hybrid_latent_moe_with_mtp():
    model = load_recipe("nvfp4-production").model

    assert {name: getattr(model.fp4, name) for name in FP4_KNOBS} == {
        "enabled": True, "rht": True, "stochastic_rounding": True, "weight_2d_blocks": True,
        "bf16_first_layers": 1, "bf16_last_layers": 1}
    assert {"M", "*", "E"} <= set(model.pattern) and model.moe.latent_size > 0 and model.mtp.depth >= 1


def test_the_demo_runs_every_fp4_idea_against_the_nvfp4_baseline_and_each_changes_a_knob(db):
    seed_ideas(io.StringIO())
    demo._baselines()

    fp4_specs = [spec for spec in demo._study_specs() if spec.get("baseline") == demo.FP4_BASELINE]

    assert len(fp4_specs) == len(demo.FP4_PATCHES) == 3
    assert {spec["ideas"][0].area.slug for spec in fp4_specs} == {"fp4-numerics"}
    for spec in fp4_specs:
        plan = plan_study(user=demo._demo_user(), kind="ablation", baseline=demo.FP4_BASELINE, ideas=[spec["ideas"][0].key], seeds=[0],
                          max_steps=demo.FP4_DEMO_STEPS)
        baseline_run, idea_run = plan.runs
        fp4_before, fp4_after = baseline_run.config["model"]["fp4"], idea_run.config["model"]["fp4"]
        assert fp4_before["enabled"] and fp4_after["enabled"]
        [changed] = [knob for knob in FP4_KNOBS if fp4_before[knob] != fp4_after[knob]]
        assert spec["ideas"][0].recipe_patch == {f"fp4.{changed}": fp4_after[changed]}
    # The high-precision baseline stays for comparison.
    assert not load_recipe("nano-baseline").model.fp4.enabled


def fp4_chart(study):
    [chart] = [chart for chart in charts.study_charts(study, []) if chart.name == "fp4_error"]
    return chart


def test_the_fp4_chart_draws_the_nvfp4_baseline_and_says_so_when_fp4_is_off(db, pic, make_idea):
    demo._baselines()
    idea = make_idea("Drop RHT", {"fp4.rht": False})
    on = services.study_launch(user=pic, kind="ablation", baseline=demo.FP4_BASELINE, ideas=[idea.key], seeds=[0],
                               max_steps=4)
    # Not the same idea: with FP4 off, dropping RHT changes nothing and that ablation is refused.
    off = services.study_launch(user=pic, kind="ablation", baseline="tiny-ci", seeds=[0], max_steps=4,
                                ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key])
    for study in (on, off):
        finish_study(study, steps=4, eval_every=2)
    # A FP4-off run logs no quantisation error (the trainer writes null); drop the made-up values.
    for run in off.runs.all():
        run.metrics.filter(name="fp4_error").delete()

    assert fp4_chart(on).figure is not None
    drawn = fp4_chart(off)
    assert drawn.figure is None and drawn.empty == charts.FP4_OFF


def test_the_study_page_says_fp4_is_off_in_its_fp4_chart(browser_page, live_server, screenshot, pic, make_idea):
    from tests.experiments.test_browser import _sign_in

    demo._baselines()
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-ci",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0, 1], max_steps=4)
    finish_study(study, steps=4, eval_every=2)
    for run in study.runs.all():
        run.metrics.filter(name="fp4_error").delete()
    _sign_in(browser_page, pic, live_server)

    browser_page.goto(f"/experiments/studies/{study.pk}/")
    browser_page.wait_for_selector("#chart-train_loss .main-svg", state="attached")

    card = browser_page.locator("section.card", has=browser_page.locator("h3", has_text="FP4 quantisation error"))
    assert card.locator(".chart-empty").inner_text() == charts.FP4_OFF
    screenshot(browser_page, "fp4-off")
