"""Patch composition, conflict detection and arm derivation (pure functions, no database)."""
import pytest

from experiments.composition import (
    ConflictError,
    IdeaPatch,
    compose,
    controlled_key_errors,
    derive_arms,
    find_conflicts,
    resolution_errors,
    same_value,
)

LATENT = IdeaPatch("IDEA-0003", {"moe.latent_size": 32, "moe.num_experts": 8})
EXPERTS = IdeaPatch("IDEA-0007", {"moe.num_experts": 16, "fp4.enabled": True})
AGREES = IdeaPatch("IDEA-0009", {"moe.num_experts": 8})


def test_disjoint_and_agreeing_patches_do_not_conflict():
    assert find_conflicts([LATENT, AGREES]) == []
    assert compose([LATENT, AGREES]) == {"moe.latent_size": 32, "moe.num_experts": 8}


def test_it_reports_each_conflicting_key_with_every_idea_and_value():
    third = IdeaPatch("IDEA-0011", {"moe.num_experts": 4})
    [conflict] = find_conflicts([LATENT, EXPERTS, AGREES, third])
    assert conflict.key == "moe.num_experts"
    assert conflict.values == (("IDEA-0003", 8), ("IDEA-0007", 16), ("IDEA-0009", 8), ("IDEA-0011", 4))
    assert conflict.to_dict()["values"][1] == {"idea": "IDEA-0007", "value": 16}


def test_booleans_and_numbers_are_different_values():
    assert not same_value(True, 1)
    assert same_value(2, 2.0)
    [conflict] = find_conflicts([IdeaPatch("IDEA-0001", {"fp4.rht": True}), IdeaPatch("IDEA-0002", {"fp4.rht": 1})])
    assert conflict.key == "fp4.rht"


def test_compose_refuses_unresolved_conflicts_and_names_them():
    with pytest.raises(ConflictError) as caught:
        compose([LATENT, EXPERTS])
    assert [c.key for c in caught.value.conflicts] == ["moe.num_experts"]
    assert "IDEA-0003 sets 8" in str(caught.value) and "IDEA-0007 sets 16" in str(caught.value)


def test_a_resolution_picks_the_value_explicitly():
    composed = compose([LATENT, EXPERTS], {"moe.num_experts": 12})
    assert composed == {"moe.latent_size": 32, "moe.num_experts": 12, "fp4.enabled": True}


def test_resolutions_for_keys_not_in_conflict_are_refused():
    assert resolution_errors([LATENT, EXPERTS], {"moe.num_experts": 8}) == []
    [error] = resolution_errors([LATENT, EXPERTS], {"moe.latent_size": 16})
    assert "'moe.latent_size' is not a conflicting key" in error and "moe.num_experts" in error


def test_ideas_may_not_change_seed_or_budget():
    errors = controlled_key_errors([IdeaPatch("IDEA-0005", {"train.max_steps": 10, "optim.lr": 1e-3})])
    assert errors == ["IDEA-0005 sets train.max_steps, which the study controls (use the study's seeds and max_steps)"]


def test_ablation_arms_are_baseline_and_each_idea_alone_even_when_ideas_conflict():
    arms = derive_arms("ablation", [LATENT, EXPERTS])
    assert [(arm.name, arm.kind, arm.idea_keys) for arm in arms] == [
        ("baseline", "baseline", ()),
        ("+IDEA-0003", "single", ("IDEA-0003",)),
        ("+IDEA-0007", "single", ("IDEA-0007",)),
    ]
    assert arms[0].patch == {} and arms[2].patch == EXPERTS.patch


def test_integration_arms_with_leave_one_out():
    ideas = [LATENT, EXPERTS, IdeaPatch("IDEA-0010", {"optim.lr": 0.001})]
    arms = derive_arms("integration", ideas, leave_one_out=True, resolutions={"moe.num_experts": 16})
    assert [arm.name for arm in arms] == ["baseline", "all", "all-IDEA-0003", "all-IDEA-0007", "all-IDEA-0010"]
    by_name = {arm.name: arm for arm in arms}
    assert by_name["all"].patch == {"moe.latent_size": 32, "moe.num_experts": 16, "fp4.enabled": True, "optim.lr": 0.001}
    # Without IDEA-0003 only IDEA-0007 sets the key; the explicit choice still holds (here the same value).
    assert by_name["all-IDEA-0003"].patch == {"moe.num_experts": 16, "fp4.enabled": True, "optim.lr": 0.001}
    # Without IDEA-0007 the resolution applies to IDEA-0003's key as well: one meaning of the key per study.
    assert by_name["all-IDEA-0007"].patch == {"moe.latent_size": 32, "moe.num_experts": 16, "optim.lr": 0.001}
    assert by_name["all-IDEA-0010"].idea_keys == ("IDEA-0003", "IDEA-0007")


def test_integration_without_resolution_raises_conflict():
    with pytest.raises(ConflictError):
        derive_arms("integration", [LATENT, EXPERTS])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be 'ablation' or 'integration', got 'sweep'"):
        derive_arms("sweep", [LATENT])


def test_a_blend_is_one_key_whose_whole_mixture_must_agree():
    code_heavy = IdeaPatch("IDEA-0021", {"data.blend": {"stdlib": 0.8, "python-docs": 0.2}})
    docs_heavy = IdeaPatch("IDEA-0022", {"data.blend": {"stdlib": 0.2, "python-docs": 0.8}, "optim.lr": 0.002})
    same_mix = IdeaPatch("IDEA-0023", {"data.blend": {"python-docs": 0.2, "stdlib": 0.8}})
    [conflict] = find_conflicts([code_heavy, docs_heavy])
    assert conflict.key == "data.blend"
    assert conflict.values == (("IDEA-0021", {"stdlib": 0.8, "python-docs": 0.2}),
                               ("IDEA-0022", {"stdlib": 0.2, "python-docs": 0.8}))
    assert find_conflicts([code_heavy, same_mix]) == []
    chosen = {"stdlib": 0.5, "python-docs": 0.5}
    assert compose([code_heavy, docs_heavy], {"data.blend": chosen}) == {"data.blend": chosen, "optim.lr": 0.002}
