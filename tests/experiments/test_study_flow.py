"""Launching a study moves its ideas along the lifecycle, recorded with the study as the reason."""
from experiments import services
from ideas import services as idea_services
from ideas.lifecycle import Status
from ideas.models import Transition


def test_an_ablation_moves_a_submitted_idea_to_in_ablation_step_by_step(volunteer, make_idea, fast_baseline):
    idea = make_idea("Latent", {"moe.latent_size": 32})
    assert idea.status == Status.SUBMITTED

    study = services.study_launch(user=volunteer, kind="ablation", baseline="tiny-fast", ideas=[idea.key],
                                  seeds=[0], max_steps=4)

    idea.refresh_from_db()
    assert idea.status == Status.IN_ABLATION
    steps = list(Transition.objects.filter(idea=idea).order_by("id").values_list("from_status", "to_status", "note", "actor"))
    reason = f"{study.label} launched (/experiments/studies/{study.pk}/)"
    assert steps == [(Status.SUBMITTED, Status.TRIAGED, reason, volunteer.pk),
                     (Status.TRIAGED, Status.IN_ABLATION, reason, volunteer.pk)]


def test_an_integration_moves_its_ideas_to_in_integration_and_leaves_later_ones(pic, make_idea, fast_baseline):
    ablated, landed_soon = make_idea("Latent", {"moe.latent_size": 32}), make_idea("LR", {"optim.lr": 0.002})
    for status in (Status.TRIAGED, Status.IN_ABLATION):
        idea_services.idea_transition(idea=ablated, to_status=status, by=pic)
    for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION, Status.LANDED):
        idea_services.idea_transition(idea=landed_soon, to_status=status, by=pic,
                                      **({"decision": idea_services.DecisionInput(summary="Helps.")}
                                         if status == Status.LANDED else {}))

    services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[ablated.key, landed_soon.key],
                          seeds=[0], max_steps=4)

    ablated.refresh_from_db()
    landed_soon.refresh_from_db()
    assert ablated.status == Status.IN_INTEGRATION
    assert landed_soon.status == Status.LANDED  # never moved backwards


def test_a_second_ablation_of_an_idea_in_ablation_records_nothing(pic, make_idea, fast_baseline):
    idea = make_idea("Latent", {"moe.latent_size": 32})
    for _ in range(2):
        services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0], max_steps=4)
    assert Transition.objects.filter(idea=idea).count() == 2


# ------------------------------------------------------------------------------------ the integration form


def _in_integration(idea, by):
    for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION):
        idea_services.idea_transition(idea=idea, to_status=status, by=by)


def test_the_form_says_which_ideas_the_user_may_not_launch_with_before_launch(web, pic, staff, outsider, make_idea,
                                                                               fast_baseline):
    foreign_area = idea_services.area_create(slug="fp4", name="FP4", pic=outsider, by=staff)
    own = make_idea("Latent", {"moe.latent_size": 32})
    foreign = make_idea("FP4 on", {"fp4.enabled": True}, in_area=foreign_area)
    _in_integration(own, pic)
    _in_integration(foreign, outsider)
    data = {"baseline": "tiny-fast", "ideas": [own.key, foreign.key], "seeds": "0, 1", "max_steps": "4"}

    form = web.get("/experiments/studies/new/").content.decode()
    assert f"{foreign.key} FP4 on — needs FP4&#x27;s PIC or a volunteer there" in form
    assert f"{own.key} Latent —" not in form
    preview = web.post("/experiments/studies/new/preview/", data).content.decode()
    assert f"You may not launch with {foreign.key} (FP4)" in preview
    assert 'form="study-form" disabled>Launch study' in preview

    refused = web.post("/experiments/studies/new/", data)  # e.g. a script, or a page older than the rules
    html = refused.content.decode()
    assert refused.status_code == 400 and "only the PIC and volunteers" in html
    # The form as it was: both ideas still ticked and the preview still showing the arms.
    assert html.count("checked") >= 2 and "Arms</th>" in html


def test_a_3_mb_form_body_answers_a_page_that_keeps_what_was_typed(web, area):
    summary = "A very long summary. " * 150_000  # about 3 MB

    response = web.post("/ideas/new/", {"title": "Huge", "area": area.pk, "summary": summary})

    html = response.content.decode()
    assert response.status_code == 400
    assert "Ensure this value has at most 20000 characters" in html
    assert summary[:1000] in html and 'value="Huge"' in html


def test_a_body_over_the_upload_limit_is_a_readable_413_page(web, area, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

    response = web.post("/ideas/new/", {"title": "Huge", "area": area.pk, "summary": "x" * (2 * 1024 * 1024)})

    assert response.status_code == 413
    html = response.content.decode()
    assert "What you sent is too large" in html and "larger than 1 MB" in html and "Flightdeck" in html
