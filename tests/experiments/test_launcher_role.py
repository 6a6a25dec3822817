"""Issue 12.5: volunteering confers no power over an area's compute. The PIC makes a volunteer a launcher;
a launcher can always cancel their own study, and every cancel records who did it, on the run page too."""
import pytest
from django.core.exceptions import PermissionDenied

from experiments import services
from ideas import services as idea_services

LATENT = {"moe.latent_size": 32}


def _launch(user, idea):
    return services.study_launch(user=user, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0],
                                 max_steps=2)


def test_a_volunteer_may_not_launch_or_cancel_until_the_pic_allows_it(area, pic, member, make_idea, fast_baseline,
                                                                       client):
    idea = make_idea("Latent", LATENT)
    idea_services.area_volunteer(area=area, user=member)
    with pytest.raises(PermissionDenied):
        _launch(member, idea)
    others = _launch(pic, idea)
    with pytest.raises(PermissionDenied):
        services.study_cancel(study=others, user=member)

    client.force_login(pic)
    assert client.post(f"/areas/{area.slug}/launchers/", {"user": member.pk, "can_launch": "1"}).status_code == 302
    own = _launch(member, idea)
    assert "launcher" in client.get("/areas/").content.decode()

    # The role goes again; the study they launched stays theirs to cancel.
    idea_services.area_launcher_set(area=area, user=member, can_launch=False, by=pic)
    assert services.study_cancel(study=own, user=member) == 2
    attempt = own.runs.first().attempts.get()
    assert attempt.cancelled_by == member
    run_page = client.get(f"/experiments/runs/{own.runs.first().pk}/").content.decode()
    assert f"cancelled by {member.username}" in run_page


def test_only_the_pic_grants_the_role(area, member, volunteer, client):
    idea_services.area_volunteer(area=area, user=member)
    with pytest.raises(PermissionDenied):
        idea_services.area_launcher_set(area=area, user=member, can_launch=True, by=volunteer)
    client.force_login(volunteer)
    assert client.post(f"/areas/{area.slug}/launchers/", {"user": member.pk, "can_launch": "1"}).status_code == 403
