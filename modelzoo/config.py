"""Recipes: typed configuration of model, training, optimiser and data, plus dotted overrides.

A recipe is a TOML file in ``modelzoo/recipes/``. Its top-level keys and ``[mamba]``, ``[attention]``,
``[mlp]``, ``[moe]``, ``[mtp]``, ``[fp4]`` tables address the model; ``[train]``, ``[optim]`` and ``[data]``
address the other sections. Dotted override keys follow the same layout (see docs/contracts.md).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelzoo.corpora import corpus_name_errors
from modelzoo.moe_checks import moe_config_errors

RECIPES_DIR = Path(__file__).parent / "recipes"
DEFAULT_RECIPE = "nano-baseline"
RECIPE_SECTIONS = ("train", "optim", "data")

# Layer letters in the Nemotron-H convention.
LAYER_KINDS = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
BACKENDS = ("auto", "torch", "cuda")
TOKENIZERS = ("byte", "bpe")


class ConfigError(ValueError):
    """A recipe, override or patch is invalid; the message names the key."""


@dataclass
class MambaConfig:
    num_heads: int = 8
    head_dim: int = 16
    state_size: int = 16
    n_groups: int = 1
    conv_kernel: int = 4
    chunk_size: int = 64
    use_conv_bias: bool = True
    time_step_min: float = 0.001
    time_step_max: float = 0.1
    time_step_floor: float = 1e-4
    # transformers' NemotronH clamps dt from below at time_step_min in every forward; keep it on to match.
    dt_clamp_in_forward: bool = True


@dataclass
class AttentionConfig:
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 0  # 0 = hidden_size // num_heads


@dataclass
class MLPConfig:
    intermediate_size: int = 256


@dataclass
class MoEConfig:
    num_experts: int = 8
    top_k: int = 2
    intermediate_size: int = 128
    shared_intermediate_size: int = 128  # 0 = no shared expert
    latent_size: int = 0  # 0 = routed experts work at full width
    routed_scaling_factor: float = 1.0
    norm_topk_prob: bool = True
    bias_update_rate: float = 1e-3
    aux_loss_coef: float = 0.0
    n_group: int = 1
    topk_group: int = 1


@dataclass
class MTPConfig:
    depth: int = 0  # 0 = no multi-token prediction
    pattern: str = "*E"
    loss_weight: float = 0.1


@dataclass
class FP4Config:
    enabled: bool = False
    rht: bool = True
    stochastic_rounding: bool = True
    weight_2d_blocks: bool = True
    bf16_first_layers: int = 0
    bf16_last_layers: int = 0


@dataclass
class ModelConfig:
    pattern: str = "M*ME"
    hidden_size: int = 128
    vocab_size: int = 256
    norm_eps: float = 1e-5
    initializer_range: float = 0.02
    rescale_prenorm_residual: bool = True
    backend: str = "auto"
    mamba: MambaConfig = field(default_factory=MambaConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    moe: MoEConfig = field(default_factory=MoEConfig)
    mtp: MTPConfig = field(default_factory=MTPConfig)
    fp4: FP4Config = field(default_factory=FP4Config)

    @property
    def layer_kinds(self) -> list[str]:
        return parse_pattern(self.pattern)

    @property
    def num_layers(self) -> int:
        return len(self.pattern)

    @property
    def attention_head_dim(self) -> int:
        return self.attention.head_dim or self.hidden_size // self.attention.num_heads


@dataclass
class TrainConfig:
    max_steps: int = 200
    batch_size: int = 8
    seq_len: int = 128
    seed: int = 0
    log_every: int = 10
    eval_every: int = 50
    eval_batches: int = 4
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    grad_clip: float = 1.0
    # Regional compilation (HybridLM.compile_regions). Off by default: on this project's CPU boxes the first
    # step costs one to three minutes of compilation (seconds with a warm cache), which only long runs repay.
    compile: bool = False


@dataclass
class OptimConfig:
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8


@dataclass
class DataConfig:
    corpus: str = "stdlib"  # a registered corpus (modelzoo.corpora); shorthand for the blend {corpus: 1}
    blend: dict[str, float] = field(default_factory=dict)  # corpus -> weight, normalised; {} = use ``corpus``
    eval_corpora: list[str] = field(default_factory=list)  # also report val_loss/<name> for these
    tokenizer: str = "byte"
    bpe_vocab_size: int = 512
    val_fraction: float = 0.05

    def resolved_blend(self) -> dict[str, float]:
        """The training mixture: ``blend`` when set, else all weight on ``corpus``."""
        return dict(self.blend) if self.blend else {self.corpus: 1.0}

    def evaluated_corpora(self) -> list[str]:
        """Every corpus with its own validation loss: the blend's, then the evaluation-only ones."""
        return sorted(set(self.resolved_blend()) | set(self.eval_corpora))


@dataclass
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        if not isinstance(data, dict):
            raise ConfigError(f"recipe must be a mapping, got {type(data).__name__}")
        flat: dict[str, Any] = {}
        for section in ("model", *RECIPE_SECTIONS):
            body = data.get(section, {})
            if not isinstance(body, dict):
                raise ConfigError(f"recipe section {section!r} must be a mapping")
            prefix = "" if section == "model" else f"{section}."
            flat.update(_flatten(body, prefix))
        unknown = sorted(set(data) - {"model", *RECIPE_SECTIONS})
        if unknown:
            raise ConfigError(f"unknown recipe section {unknown[0]!r}; allowed: model, train, optim, data")
        return apply_overrides(Recipe(), flat)

    def config_hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_pattern(pattern: str) -> list[str]:
    """Layer kinds ("mamba", "attention", "mlp", "moe") of a Nemotron-H pattern such as "M*ME"."""
    bad = sorted({letter for letter in pattern if letter not in LAYER_KINDS})
    if bad:
        raise ConfigError(
            f"pattern {pattern!r} has unknown letter(s) {bad}; allowed: M (Mamba-2), * (attention), - (MLP), E (MoE)"
        )
    return [LAYER_KINDS[letter] for letter in pattern]


def format_pattern(kinds: list[str]) -> str:
    """Inverse of :func:`parse_pattern`."""
    letters = {kind: letter for letter, kind in LAYER_KINDS.items()}
    unknown = [kind for kind in kinds if kind not in letters]
    if unknown:
        raise ConfigError(f"unknown layer kind {unknown[0]!r}; allowed: {sorted(letters)}")
    return "".join(letters[kind] for kind in kinds)


# ---------------------------------------------------------------- loading


def list_recipes() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.toml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a recipe by name (``modelzoo/recipes/<name>.toml``) or by path to a TOML file."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        path = RECIPES_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            close = difflib.get_close_matches(str(name_or_path), list_recipes(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown recipe {str(name_or_path)!r} (known: {', '.join(list_recipes())}){hint}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"recipe {path}: invalid TOML: {error}") from None
    try:
        return apply_overrides(Recipe(), _flatten(data, ""))
    except ConfigError as error:
        raise ConfigError(f"recipe {path.name}: {error}") from None


def _flatten(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and f"{prefix}{key}" not in STRUCTURED_KEYS:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ---------------------------------------------------------------- overrides


def _leaf_types(cls: type, prefix: str = "") -> dict[str, type]:
    """Dotted key -> Python type of every scalar field reachable from dataclass ``cls``."""
    leaves: dict[str, type] = {}
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            leaves.update(_leaf_types(hint, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = hint
    return leaves


def _override_keys() -> dict[str, type]:
    keys = _leaf_types(ModelConfig)
    for section in RECIPE_SECTIONS:
        keys.update(_leaf_types(typing.get_type_hints(Recipe)[section], f"{section}."))
    return keys


OVERRIDE_KEYS: dict[str, type] = _override_keys()


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, list(OVERRIDE_KEYS), n=3, cutoff=0.5)
    sections = {k.split(".")[0] for k in OVERRIDE_KEYS if "." in k}
    if key in sections:
        return f"{key!r} is a section, not a key; set one of its fields such as {key}.{_first_field(key)}"
    hint = f"; closest valid keys: {', '.join(close)}" if close else ""
    return f"unknown key {key!r}{hint}"


def _first_field(section: str) -> str:
    return next(k for k in OVERRIDE_KEYS if k.startswith(section + ".")).split(".", 1)[1]


STRUCTURED_KEYS = ("data.blend", "data.eval_corpora")  # the keys whose values are a JSON object or list


def _coerce_blend(value: Any) -> dict[str, float]:
    """A corpus -> weight mapping, normalised to sum to 1 and sorted by name (so equal mixes hash equally)."""
    if not isinstance(value, dict):
        raise ConfigError(f"data.blend: expected an object of corpus name -> weight, got {type(value).__name__} {value!r}")
    for name, weight in value.items():
        number = isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
        if not number or weight < 0:
            raise ConfigError(f"data.blend: the weight of {name!r} must be a number >= 0, got {weight!r}")
    total = sum(value.values())
    if value and total <= 0:
        raise ConfigError("data.blend: at least one weight must be > 0")
    return {name: value[name] / total for name in sorted(value)}


def _coerce_name_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{key}: expected a list of corpus names, got {type(value).__name__} {value!r}")
    return sorted(set(value))


def _coerce(key: str, value: Any) -> Any:
    if key == "data.blend":
        return _coerce_blend(value)
    if key == "data.eval_corpora":
        return _coerce_name_list(key, value)
    expected = OVERRIDE_KEYS[key]
    # bool is a subclass of int in Python, so it must be rejected explicitly for int/float keys.
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            ok = math.isfinite(value)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(f"{key}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _set(recipe: Recipe, key: str, value: Any) -> None:
    *path, leaf = key.split(".")
    target: Any = recipe if path and path[0] in RECIPE_SECTIONS else recipe.model
    for part in path:
        target = getattr(target, part)
    setattr(target, leaf, value)


def _assign(recipe: Recipe, overrides: dict[str, Any]) -> Recipe:
    """A copy of ``recipe`` with type-checked ``overrides`` set (no cross-field validation)."""
    updated = copy.deepcopy(recipe)
    for key, value in overrides.items():
        if key not in OVERRIDE_KEYS:
            raise ConfigError(_unknown_key_message(key))
        _set(updated, key, _coerce(key, value))
    _settle_corpus_or_blend(updated.data, overrides)
    return updated


def _settle_corpus_or_blend(data: DataConfig, overrides: dict[str, Any]) -> None:
    """``data.corpus`` and ``data.blend`` say the same thing two ways: setting one replaces the other."""
    sets_corpus, sets_blend = bool(overrides.get("data.corpus")), bool(overrides.get("data.blend"))
    if sets_corpus and sets_blend:
        raise ConfigError("data.blend: set either data.corpus (one corpus) or data.blend (a mixture), not both")
    if sets_blend:
        data.corpus = ""
    elif sets_corpus:
        data.blend = {}


def apply_overrides(recipe: Recipe, overrides: dict[str, Any]) -> Recipe:
    """A new recipe with dotted ``overrides`` applied, type-checked and cross-validated."""
    updated = _assign(recipe, overrides)
    errors = cross_field_errors(updated)
    if errors:
        raise ConfigError("; ".join(errors))
    return updated


def merge_overrides(*layers: dict[str, Any]) -> dict[str, Any]:
    """Override layers (e.g. a baseline's, then an arm's patch) as one; later layers win. A layer choosing the
    data by ``data.corpus`` or ``data.blend`` replaces an earlier layer's choice made with the other key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, other in (("data.corpus", "data.blend"), ("data.blend", "data.corpus")):
            if layer.get(key):
                merged.pop(other, None)
        merged.update(layer)
    return merged


def apply_model_overrides(model: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """Like :func:`apply_overrides` for a bare model config: model keys only, model checks only."""
    outside = [key for key in overrides if key.split(".")[0] in RECIPE_SECTIONS]
    if outside:
        raise ConfigError(f"{outside[0]!r} is not a model key")
    updated = _assign(Recipe(model=model), overrides).model
    errors = model_config_errors(updated)
    if errors:
        raise ConfigError("; ".join(errors))
    return updated


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """A validated ModelConfig from its nested dictionary (``dataclasses.asdict`` form); missing keys default."""
    return apply_model_overrides(ModelConfig(), _flatten(data, ""))


NOT_TEXT = "must be valid Unicode text (it contains a lone surrogate or a NUL character)"


def _is_text(text: str) -> bool:
    """Storable everywhere a patch goes (database, JSON files, the trainer's command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def validate_patch(patch: Any) -> list[str]:
    """Every problem of a recipe patch (dotted key -> JSON scalar) applied to the default recipe; [] if valid."""
    if not isinstance(patch, dict):
        return [f"patch must be a JSON object of dotted key -> value, got {type(patch).__name__}"]
    errors: list[str] = []
    scalars = (str, int, float, bool)
    for key, value in patch.items():
        if not isinstance(key, str):
            errors.append(f"patch key {key!r} must be a string")
        elif not _is_text(key):
            errors.append(f"patch key {_printable(key)!r} {NOT_TEXT}")
        elif isinstance(value, str) and not _is_text(value):
            errors.append(f"{key}: value {NOT_TEXT}")
        elif key not in OVERRIDE_KEYS:
            errors.append(_unknown_key_message(key))
        elif not isinstance(value, scalars) and key not in STRUCTURED_KEYS:
            errors.append(f"{key}: value must be a JSON scalar (string, number, boolean), got {type(value).__name__}")
        else:
            try:
                _coerce(key, value)
            except ConfigError as error:
                errors.append(str(error))
    if errors:
        return errors
    try:
        recipe = _assign(load_recipe(DEFAULT_RECIPE), patch)
    except ConfigError as error:
        return [str(error)]
    return cross_field_errors(recipe)


# ---------------------------------------------------------------- cross-field checks


def _model_ranges(m: ModelConfig) -> tuple[dict[str, float], dict[str, float]]:
    """(keys that must be > 0, keys that must be >= 0) of the model section."""
    positive = {
        "hidden_size": m.hidden_size,
        "vocab_size": m.vocab_size,
        "norm_eps": m.norm_eps,
        "initializer_range": m.initializer_range,
        "mamba.num_heads": m.mamba.num_heads,
        "mamba.head_dim": m.mamba.head_dim,
        "mamba.state_size": m.mamba.state_size,
        "mamba.n_groups": m.mamba.n_groups,
        "mamba.conv_kernel": m.mamba.conv_kernel,
        "mamba.chunk_size": m.mamba.chunk_size,
        "mamba.time_step_min": m.mamba.time_step_min,
        "mamba.time_step_floor": m.mamba.time_step_floor,
        "attention.num_heads": m.attention.num_heads,
        "attention.num_kv_heads": m.attention.num_kv_heads,
        "mlp.intermediate_size": m.mlp.intermediate_size,
    }
    non_negative = {
        "attention.head_dim": m.attention.head_dim,
        "mtp.depth": m.mtp.depth,
        "mtp.loss_weight": m.mtp.loss_weight,
        "fp4.bf16_first_layers": m.fp4.bf16_first_layers,
        "fp4.bf16_last_layers": m.fp4.bf16_last_layers,
    }
    return positive, non_negative


def _recipe_ranges(recipe: Recipe) -> tuple[dict[str, float], dict[str, float]]:
    """(keys that must be > 0, keys that must be >= 0) of the train, optim and data sections."""
    train, optim = recipe.train, recipe.optim
    positive = {
        "train.batch_size": train.batch_size,
        "train.seq_len": train.seq_len,
        "train.log_every": train.log_every,
        "train.eval_every": train.eval_every,
        "train.eval_batches": train.eval_batches,
        "train.checkpoint_every": train.checkpoint_every,
        "train.keep_checkpoints": train.keep_checkpoints,
        "optim.lr": optim.lr,
        "optim.eps": optim.eps,
        "data.bpe_vocab_size": recipe.data.bpe_vocab_size,
    }
    non_negative = {
        "train.max_steps": train.max_steps,
        "train.seed": train.seed,
        "train.grad_clip": train.grad_clip,
        "optim.min_lr": optim.min_lr,
        "optim.warmup_steps": optim.warmup_steps,
        "optim.weight_decay": optim.weight_decay,
    }
    return positive, non_negative


def _range_errors(positive: dict[str, float], non_negative: dict[str, float]) -> list[str]:
    errors = [f"{key}: must be > 0, got {value}" for key, value in positive.items() if value <= 0]
    return errors + [f"{key}: must be >= 0, got {value}" for key, value in non_negative.items() if value < 0]


def model_config_errors(m: ModelConfig) -> list[str]:
    """Problems of a model config (ranges, pattern letters, shapes that must divide); [] when consistent."""
    errors = _range_errors(*_model_ranges(m))
    if errors:
        return errors  # divisibility checks below would divide by zero or repeat the same cause
    errors += moe_config_errors(m.moe, m.hidden_size)

    for key, pattern in (("pattern", m.pattern), ("mtp.pattern", m.mtp.pattern)):
        try:
            parse_pattern(pattern)
        except ConfigError as error:
            errors.append(f"{key}: {error}")
    if not m.pattern:
        errors.append("pattern: must have at least one layer")
    if m.mtp.depth > 0 and not m.mtp.pattern:
        errors.append("mtp.pattern: must have at least one layer when mtp.depth > 0")
    if m.backend not in BACKENDS:
        errors.append(f"backend: must be one of {', '.join(BACKENDS)}, got {m.backend!r}")

    if m.attention.head_dim == 0 and m.hidden_size % m.attention.num_heads:
        errors.append(
            f"attention.num_heads: {m.attention.num_heads} does not divide hidden_size {m.hidden_size} "
            "(or set attention.head_dim explicitly)"
        )
    if m.attention.num_heads % m.attention.num_kv_heads:
        errors.append(
            f"attention.num_kv_heads: {m.attention.num_kv_heads} does not divide "
            f"attention.num_heads {m.attention.num_heads}"
        )
    if m.mamba.num_heads % m.mamba.n_groups:
        errors.append(f"mamba.n_groups: {m.mamba.n_groups} does not divide mamba.num_heads {m.mamba.num_heads}")
    if m.mamba.time_step_min > m.mamba.time_step_max:
        errors.append(
            f"mamba.time_step_min: {m.mamba.time_step_min} exceeds mamba.time_step_max {m.mamba.time_step_max}"
        )

    if m.fp4.enabled and m.fp4.bf16_first_layers + m.fp4.bf16_last_layers > len(m.pattern):
        errors.append(
            f"fp4.bf16_first_layers + fp4.bf16_last_layers = {m.fp4.bf16_first_layers + m.fp4.bf16_last_layers} "
            f"exceeds the {len(m.pattern)} layers of pattern {m.pattern!r}"
        )
    return errors


def cross_field_errors(recipe: Recipe) -> list[str]:
    """Problems that involve value ranges or more than one field; [] when the recipe is consistent."""
    errors = model_config_errors(recipe.model) + _range_errors(*_recipe_ranges(recipe))
    if errors:
        return errors
    optim, data, vocab_size = recipe.optim, recipe.data, recipe.model.vocab_size
    if optim.min_lr > optim.lr:
        errors.append(f"optim.min_lr: {optim.min_lr} exceeds optim.lr {optim.lr}")
    for beta in ("beta1", "beta2"):
        value = getattr(optim, beta)
        if not 0 <= value < 1:
            errors.append(f"optim.{beta}: must be in [0, 1), got {value}")
    blend_key = "data.blend" if data.blend else "data.corpus"
    errors += corpus_name_errors(blend_key, list(data.resolved_blend()))
    errors += corpus_name_errors("data.eval_corpora", data.eval_corpora)
    if not 0 < data.val_fraction < 1:
        errors.append(f"data.val_fraction: must be in (0, 1), got {data.val_fraction}")
    if data.tokenizer not in TOKENIZERS:
        errors.append(f"data.tokenizer: must be one of {', '.join(TOKENIZERS)}, got {data.tokenizer!r}")
    elif data.tokenizer == "byte" and vocab_size < 256:
        errors.append(f"vocab_size: {vocab_size} is smaller than the 256 symbols of the byte tokenizer")
    elif data.tokenizer == "bpe" and vocab_size < data.bpe_vocab_size:
        errors.append(f"vocab_size: {vocab_size} is smaller than data.bpe_vocab_size {data.bpe_vocab_size}")
    return errors
