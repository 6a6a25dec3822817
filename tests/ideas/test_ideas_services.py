"""Unit tests of the ideas services: keys, validation, editing, handover, volunteering, comments, watching."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ideas import services
from ideas.lifecycle import Status
from ideas.models import Activity, IdeaKeyCounter, PicHandover


def test_it_issues_sequential_zero_padded_keys(make_idea):
    keys = [make_idea().key for _ in range(3)]
    assert keys == ["IDEA-0001", "IDEA-0002", "IDEA-0003"]


def test_a_failed_submission_does_not_use_up_a_key(make_idea):
    make_idea()
    with pytest.raises(ValidationError):
        make_idea(title="")
    assert make_idea().key == "IDEA-0002"
    assert IdeaKeyCounter.objects.get().last_number == 2


def test_keys_are_never_reused_after_deletion(make_idea):
    make_idea()
    second = make_idea()
    second.delete()
    assert make_idea().key == "IDEA-0003"


def test_submission_normalises_tags_and_watches_the_submitter(idea, submitter):
    assert sorted(idea.tags.values_list("name", flat=True)) == ["latent", "moe"]
    assert list(idea.watchers.all()) == [submitter]
    assert idea.status == Status.SUBMITTED
    assert Activity.objects.get(idea=idea).kind == Activity.Kind.SUBMITTED


def test_it_names_every_bad_field(make_idea):
    with pytest.raises(ValidationError) as caught:
        make_idea(title="x" * 201, summary="", recipe_patch={"moe.latnt_size": 1, "optim.lr": "fast"})
    errors = caught.value.message_dict
    assert set(errors) == {"title", "summary", "recipe_patch"}
    assert any("moe.latnt_size" in message and "moe.latent_size" in message for message in errors["recipe_patch"])
    assert any(message.startswith("optim.lr") for message in errors["recipe_patch"])


@pytest.mark.parametrize(
    "patch, offending",
    [
        ({"": 1}, "''"),
        ({"moe..latent_size": 1}, "moe..latent_size"),
        ({"moe.latent_size": {"nested": 1}}, "moe.latent_size"),
        ({"moe.latent_size": None}, "moe.latent_size"),
        ({"attention.num_kv_heads": 3}, "attention.num_kv_heads"),
    ],
)
def test_malformed_recipe_patches_name_the_key(make_idea, patch, offending):
    with pytest.raises(ValidationError) as caught:
        make_idea(recipe_patch=patch)
    assert any(offending in message for message in caught.value.message_dict["recipe_patch"])


def test_a_recipe_patch_must_be_an_object(make_idea):
    with pytest.raises(ValidationError) as caught:
        make_idea(recipe_patch=["moe.latent_size", 64])
    assert "must be an object" in caught.value.message_dict["recipe_patch"][0]


def test_too_many_tags_are_refused(make_idea):
    with pytest.raises(ValidationError) as caught:
        make_idea(tags=[f"t{i}" for i in range(services.MAX_TAGS + 1)])
    assert "tags" in caught.value.message_dict


def test_the_submitter_edits_while_submitted(idea, submitter):
    services.idea_update(idea=idea, by=submitter, changes={"title": "Latent MoE, 32 wide", "tags": ["latent"]})
    idea.refresh_from_db()
    assert idea.title == "Latent MoE, 32 wide"
    assert list(idea.tags.values_list("name", flat=True)) == ["latent"]


def test_the_submitter_cannot_edit_after_triage(idea, submitter, pic):
    services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic)
    with pytest.raises(PermissionDenied):
        services.idea_update(idea=idea, by=submitter, changes={"title": "Sneaky"})


def test_editing_refuses_fields_that_are_not_editable(idea, submitter):
    with pytest.raises(ValidationError) as caught:
        services.idea_update(idea=idea, by=submitter, changes={"status": Status.LANDED})
    assert "status" in caught.value.message_dict


def test_editing_validates_the_recipe_patch(idea, submitter):
    with pytest.raises(ValidationError) as caught:
        services.idea_update(idea=idea, by=submitter, changes={"recipe_patch": {"mtp.depth": -1}})
    assert any("mtp.depth" in message for message in caught.value.message_dict["recipe_patch"])


def test_handover_changes_the_pic_and_records_history(area, pic, member, staff):
    services.area_hand_over(area=area, to_user=member, by=pic, note="parental leave")
    area.refresh_from_db()
    assert area.pic == member
    latest, created = PicHandover.objects.filter(area=area)[:2]
    assert (latest.from_user, latest.to_user, latest.by, latest.note) == (pic, member, pic, "parental leave")
    assert (created.from_user, created.to_user, created.by) == (None, pic, staff)


def test_handover_to_the_current_pic_is_refused(area, pic):
    with pytest.raises(ValidationError) as caught:
        services.area_hand_over(area=area, to_user=pic, by=pic)
    assert "to_user" in caught.value.message_dict


def test_only_staff_create_areas(member, pic):
    with pytest.raises(PermissionDenied):
        services.area_create(slug="rl", name="RL", pic=pic, by=member)


def test_area_slug_and_name_are_validated(staff, pic, area):
    with pytest.raises(ValidationError) as caught:
        services.area_create(slug="moe-routing", name="", pic=pic, by=staff)
    assert {"slug", "name"} <= set(caught.value.message_dict)


def test_volunteering_is_idempotent_and_reversible(area, member):
    services.area_volunteer(area=area, user=member)
    services.area_volunteer(area=area, user=member)
    assert list(area.volunteers.all()) == [member]
    services.area_leave(area=area, user=member)
    assert not area.volunteers.exists()


def test_commenting_makes_the_author_a_watcher(idea, member):
    comment = services.comment_create(idea=idea, author=member, body="Run 3 seeds please.")
    assert comment.pk and idea.watchers.filter(pk=member.pk).exists()


def test_empty_comments_are_refused(idea, member):
    with pytest.raises(ValidationError) as caught:
        services.comment_create(idea=idea, author=member, body="")
    assert "body" in caught.value.message_dict


def test_inactive_users_cannot_submit(area, make_user):
    ghost = make_user("ghost", is_active=False)
    with pytest.raises(PermissionDenied):
        services.idea_create(submitter=ghost, area=area, title="t", summary="s")


@pytest.mark.parametrize("patch, key", [
    ({"data.corpus": "/etc"}, "data.corpus"),
    ({"data.corpus": "../../var/secrets"}, "data.corpus"),
    ({"data.blend": {"stdlib": 0.5, "/home": 0.5}}, "data.blend"),
])
def test_a_recipe_patch_naming_a_path_instead_of_a_corpus_is_refused(make_idea, patch, key):
    with pytest.raises(ValidationError) as caught:
        make_idea(recipe_patch=patch)
    (message,) = caught.value.message_dict["recipe_patch"]
    assert message.startswith(f"{key}: ") and "is not a registered corpus" in message and "stdlib" in message


def test_a_blend_patch_is_accepted(make_idea):
    idea = make_idea(recipe_patch={"data.blend": {"stdlib": 0.7, "python-docs": 0.3}})
    assert idea.recipe_patch == {"data.blend": {"stdlib": 0.7, "python-docs": 0.3}}
