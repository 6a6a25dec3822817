"""The reading policy (ideas.visibility, experiments.visibility, compute.visibility): who sees a restricted
area's ideas, studies, runs and compute rows, with one subquery and no per-row queries."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.exceptions import ValidationError
from django.utils import timezone

from compute import services as compute_services
from compute import visibility as compute_visibility
from compute.cycles import Calendar
from compute.models import Allocation, Pool, UsageEntry
from experiments import services as experiment_services
from experiments import visibility as experiment_visibility
from experiments.models import Arm, Run
from ideas import services, visibility
from ideas.models import Area


@pytest.fixture
def people(db) -> dict[str, User]:
    names = ["staff", "pic", "member", "outsider", "reviewer", "inactive_member"]
    users = {name: User.objects.create_user(name) for name in names}
    users["staff"].is_staff = True
    users["staff"].save()
    users["reviewer"].groups.add(Group.objects.get_or_create(name="reviewers")[0])
    return users


@pytest.fixture
def secret(people) -> Area:
    area = services.area_create(slug="secret", name="Secret", pic=people["pic"], by=people["staff"], restricted=True)
    for name in ("member", "inactive_member"):
        services.area_volunteer(area=area, user=people[name])
    people["inactive_member"].is_active = False
    people["inactive_member"].save()
    return area


@pytest.fixture
def open_area(people) -> Area:
    return services.area_create(slug="open", name="Open", pic=people["outsider"], by=people["staff"])


def _idea(area: Area, submitter: User, title: str, patch: dict | None = None):
    return services.idea_create(submitter=submitter, area=area, title=title, summary="x", recipe_patch=patch or {})


def test_only_staff_the_pic_and_members_see_a_restricted_area(people, secret, open_area):
    _idea(secret, people["member"], "hidden")
    _idea(open_area, people["outsider"], "open")
    for name, sees_secret in [("staff", True), ("pic", True), ("member", True), ("outsider", False),
                              ("reviewer", False), ("inactive_member", False)]:
        user = people[name]
        assert set(visibility.visible_areas(user).values_list("slug", flat=True)) == (
            {"secret", "open"} if sees_secret else {"open"}), name
        assert visibility.can_view_area(user, secret) is sees_secret, name
        assert set(visibility.visible_ideas(user).values_list("title", flat=True)) == (
            {"hidden", "open"} if sees_secret else {"open"}), name
    anonymous = AnonymousUser()
    assert list(visibility.visible_areas(anonymous)) == [open_area]
    assert not visibility.can_view_area(anonymous, secret)


def test_unrestricted_areas_cost_no_query_to_check(people, open_area, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert visibility.can_view_area(people["outsider"], open_area)
        assert visibility.can_view_area(AnonymousUser(), open_area)


def test_filtering_a_list_is_one_query_whatever_its_length(people, secret, open_area, django_assert_num_queries):
    for number in range(5):
        _idea(secret, people["member"], f"hidden {number}")
        _idea(open_area, people["outsider"], f"open {number}")
    with django_assert_num_queries(1):
        assert len(list(visibility.visible_ideas(people["outsider"]))) == 5
    with django_assert_num_queries(1):
        assert len(list(visibility.visible_ideas(people["member"]))) == 10


def test_ideas_cannot_be_submitted_into_an_area_one_cannot_see(people, secret):
    with pytest.raises(ValidationError) as refused:
        _idea(secret, people["outsider"], "sneaky")
    assert "area" in refused.value.message_dict


@pytest.fixture
def studies(people, secret, open_area):
    """An ablation in the secret area, one in the open area, and an integration study mixing both."""
    experiment_services.baseline_save(name="tiny", recipe="tiny-ci", overrides={})
    hidden = _idea(secret, people["pic"], "hidden", {"moe.latent_size": 32})
    shown = _idea(open_area, people["outsider"], "open", {"optim.weight_decay": 0.05})
    launch = experiment_services.study_launch
    return {
        "secret": launch(user=people["pic"], kind="ablation", baseline="tiny", ideas=[hidden.key], seeds=[0], max_steps=2),
        "open": launch(user=people["outsider"], kind="ablation", baseline="tiny", ideas=[shown.key], seeds=[0], max_steps=2),
        "mixed": launch(user=people["staff"], kind="integration", baseline="tiny", ideas=[shown.key, hidden.key],
                        seeds=[0], max_steps=2),
    }


def test_a_study_with_any_idea_of_a_hidden_area_is_hidden(people, studies):
    titles = {study.pk: name for name, study in studies.items()}

    def seen(user: User) -> set[str]:
        return {titles[pk] for pk in experiment_visibility.visible_studies(user).values_list("pk", flat=True)}

    assert seen(people["outsider"]) == {"open"}
    assert seen(people["member"]) == seen(people["staff"]) == {"secret", "open", "mixed"}
    assert {run.study_id for run in experiment_visibility.visible_runs(people["outsider"])} == {studies["open"].pk}
    assert not experiment_visibility.can_view_study(people["outsider"], studies["mixed"])


def test_a_run_shared_into_a_visible_study_is_visible(people, studies):
    run = studies["secret"].runs.first()
    assert not experiment_visibility.can_view_run(people["outsider"], run)
    Arm.objects.filter(study=studies["open"]).first().runs.add(run)
    assert experiment_visibility.can_view_run(people["outsider"], run)
    assert run in Run.objects.filter(experiment_visibility.run_q(people["outsider"]))


def test_reviewers_see_compute_rows_of_restricted_areas_and_outsiders_do_not(people, secret, open_area):
    pool = Pool.objects.create(name="h100", gpu_type="H100", gpu_count=8)
    calendar = Calendar.from_settings()
    cycle = compute_services.cycle_ensure(window=calendar.window_containing(timezone.now()))
    hidden_idea = _idea(secret, people["pic"], "hidden")
    for area, idea in ((secret, hidden_idea), (open_area, None)):
        compute_services.allocation_set(cycle=cycle, pool=pool, area=area, gpu_hours=10, actor=people["reviewer"])
        start = cycle.start + timedelta(hours=1)
        compute_services.usage_charge_segment(attempt_key=area.slug, segment_start=start, gpus=1, pool=pool, area=area,
                                              idea=idea, segment_end=start + timedelta(hours=1))
    org = Allocation.objects.get(level=Allocation.Level.ORG)
    outsider, reviewer = people["outsider"], people["reviewer"]
    assert set(compute_visibility.visible_allocations(outsider)) == {org, Allocation.objects.get(area=open_area)}
    assert compute_visibility.visible_allocations(reviewer).count() == 3
    assert set(compute_visibility.visible_usage(outsider).values_list("area__slug", flat=True)) == {"open"}
    assert compute_visibility.visible_usage(reviewer).count() == UsageEntry.objects.count() == 2
    assert compute_visibility.can_view_area_compute(reviewer, secret)
    assert not compute_visibility.can_view_area_compute(outsider, secret)
