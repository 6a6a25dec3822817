"""Recipes, dotted overrides and patch validation (modelzoo.config)."""

import dataclasses
import json

import pytest

from modelzoo.config import (
    ConfigError,
    ModelConfig,
    Recipe,
    apply_overrides,
    format_pattern,
    list_recipes,
    load_recipe,
    parse_pattern,
    validate_patch,
)


def test_shipped_recipes_load_and_round_trip_through_dict():
    assert {"tiny-ci", "nano-baseline"} <= set(list_recipes())
    for name in list_recipes():
        recipe = load_recipe(name)
        again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
        assert again == recipe
        assert again.config_hash() == recipe.config_hash()


def test_tiny_ci_is_small():
    model = load_recipe("tiny-ci").model
    assert model.hidden_size <= 64 and len(model.pattern) <= 4 and model.vocab_size == 256


def test_override_routing_and_new_object():
    recipe = load_recipe("tiny-ci")
    updated = apply_overrides(
        recipe, {"pattern": "M*-E", "moe.latent_size": 32, "train.max_steps": 7, "optim.lr": 1, "data.corpus": "manpages"}
    )
    assert (updated.model.pattern, updated.model.moe.latent_size) == ("M*-E", 32)
    assert (updated.train.max_steps, updated.optim.lr, updated.data.corpus) == (7, 1.0, "manpages")
    assert isinstance(updated.optim.lr, float)  # an int is accepted for a float key and stored as float
    assert recipe.model.pattern == "M*ME" and recipe.train.max_steps != 7  # the input is untouched
    assert updated.config_hash() != recipe.config_hash()


def test_unknown_key_names_it_and_the_closest_keys():
    with pytest.raises(ConfigError) as error:
        apply_overrides(load_recipe("tiny-ci"), {"moe.latnt_size": 8})
    assert "'moe.latnt_size'" in str(error.value) and "moe.latent_size" in str(error.value)


@pytest.mark.parametrize(
    "key, value, expected",
    [("hidden_size", True, "expected int"), ("hidden_size", 64.0, "expected int"),
     ("optim.lr", "fast", "expected float"), ("fp4.enabled", 1, "expected bool"), ("pattern", 3, "expected str"),
     ("train.compile", "yes", "expected bool"),
     ("optim.lr", float("nan"), "expected float")],
)
def test_wrong_type_names_key_and_expected_type(key, value, expected):
    with pytest.raises(ConfigError, match=expected) as error:
        apply_overrides(load_recipe("tiny-ci"), {key: value})
    assert key in str(error.value)


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"attention.num_heads": 3}, "attention.num_heads"),  # 3 does not divide width 64
        ({"attention.num_kv_heads": 3}, "attention.num_kv_heads"),
        ({"moe.top_k": 9}, "moe.top_k"),
        ({"moe.latent_size": 65}, "moe.latent_size"),
        ({"pattern": "M*XE"}, "pattern"),
        ({"pattern": ""}, "pattern"),
        ({"mamba.n_groups": 3}, "mamba.n_groups"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"optim.min_lr": 1.0}, "optim.min_lr"),
        ({"backend": "tpu"}, "backend"),
        ({"vocab_size": 100}, "vocab_size"),
        ({"fp4.enabled": True, "fp4.bf16_first_layers": 3, "fp4.bf16_last_layers": 3}, "fp4.bf16_first_layers"),
    ],
)
def test_cross_field_errors_name_the_key(patch, key):
    with pytest.raises(ConfigError) as error:
        apply_overrides(load_recipe("tiny-ci"), patch)
    assert key in str(error.value)


def test_section_name_is_not_a_key():
    with pytest.raises(ConfigError, match="section"):
        apply_overrides(load_recipe("tiny-ci"), {"moe": 3})


def test_validate_patch_collects_every_problem():
    assert validate_patch({}) == []
    assert validate_patch({"moe.latent_size": 64, "fp4.enabled": True, "train.max_steps": 10}) == []
    errors = validate_patch({"moe.latnt_size": 1, "hidden_size": True, "pattern": ["M"], 3: 1})
    assert len(errors) == 4
    assert any("moe.latnt_size" in e and "moe.latent_size" in e for e in errors)
    assert any("hidden_size" in e and "int" in e for e in errors)
    assert any("pattern" in e and "scalar" in e for e in errors)
    # cross-field problems are judged against the default recipe (nano-baseline: 8 experts)
    assert any("moe.top_k" in e for e in validate_patch({"moe.top_k": 9}))
    assert validate_patch({"moe.top_k": 8}) == []
    assert validate_patch(["moe.top_k", 2])[0].startswith("patch must be")


def test_unknown_recipe_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="tiny-ci"):
        load_recipe("tiny")
    bad = tmp_path / "bad.toml"
    bad.write_text("hidden_size = [")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_recipe(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[moe]\nnum_expert = 4\n")
    with pytest.raises(ConfigError, match="moe.num_experts"):
        load_recipe(unknown)


def test_recipe_from_path_with_partial_sections(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('pattern = "ME"\n[train]\nmax_steps = 3\n')
    recipe = load_recipe(path)
    assert recipe.model.pattern == "ME" and recipe.train.max_steps == 3
    assert recipe.model.mamba == ModelConfig().mamba  # missing keys take the defaults


def test_from_dict_rejects_unknown_section():
    with pytest.raises(ConfigError, match="section 'trian'"):
        Recipe.from_dict({"trian": {}})


def test_pattern_parser_round_trips():
    for pattern in ["M*ME", "MEM*EMEM*E", "-", "*-EM"]:
        assert format_pattern(parse_pattern(pattern)) == pattern
    assert parse_pattern("M*-E") == ["mamba", "attention", "mlp", "moe"]
    with pytest.raises(ConfigError, match="'x'"):
        parse_pattern("Mx")


def test_recipe_dataclass_fields_cover_the_contract():
    contract = ["train.max_steps", "train.batch_size", "train.seq_len", "train.seed", "train.log_every",
                "train.eval_every", "train.eval_batches", "train.checkpoint_every", "train.keep_checkpoints",
                "train.grad_clip", "optim.lr", "optim.min_lr", "optim.warmup_steps", "optim.weight_decay",
                "optim.beta1", "optim.beta2", "optim.eps", "data.corpus", "data.blend", "data.eval_corpora", "data.tokenizer", "data.bpe_vocab_size",
                "data.val_fraction", "moe.bias_update_rate", "fp4.weight_2d_blocks", "mtp.loss_weight",
                "mamba.dt_clamp_in_forward", "attention.num_kv_heads"]
    flat = Recipe().to_dict()
    for key in contract:
        section, *rest = key.split(".")
        node = flat[section] if section in ("train", "optim", "data") else flat["model"][section]
        assert rest[0] in node, key
    assert dataclasses.is_dataclass(load_recipe("tiny-ci").model.fp4)
