"""Interchange with transformers' NemotronHForCausalLM: ``config.json`` + ``model.safetensors``, and for runs
trained with a subword tokenizer its ``tokenizer.json`` + ``tokenizer_config.json`` (``AutoTokenizer`` loads them).

HybridLM's parameter names equal transformers' below the ``model.`` prefix, so conversion is a rename.
MTP weights are stored under ``mtp.*`` (transformers ignores them on load). The full modelzoo model config
is kept in config.json under ``modelzoo_config``, so settings transformers has no field for (fp4, MoE
balancing, MTP pattern, backend) survive a round trip; it takes precedence over the transformers fields.
Features transformers' NemotronH always has are emulated exactly: a model without shared expert exports a width-1 shared expert whose output weight is 0.

CLI: ``python -m modelzoo.export --checkpoint DIR --to hf OUT`` where DIR is a training run directory
(its newest complete checkpoint is used) or one of its ``checkpoints/step-N`` directories.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from modelzoo.config import (
    ConfigError,
    ModelConfig,
    Recipe,
    apply_model_overrides,
    format_pattern,
    model_config_from_dict,
    parse_pattern,
)
from modelzoo.checkpoint import MARKER, latest_checkpoint, load_checkpoint
from modelzoo.model import HybridLM

HF_ARCHITECTURE = "NemotronHForCausalLM"
HF_MODEL_TYPE = "nemotron_h"
HF_LAYER_TYPES = {"mamba": "linear_attention", "attention": "full_attention", "mlp": "mlp", "moe": "moe"}
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


class ExportError(ValueError):
    """A model or directory cannot be converted; the message says what and where."""


# ---------------------------------------------------------------- config


def hf_config(cfg: ModelConfig) -> dict[str, Any]:
    """transformers NemotronHConfig fields describing ``cfg``."""
    if not cfg.mamba.dt_clamp_in_forward:
        raise ExportError(
            "mamba.dt_clamp_in_forward is false, but transformers' NemotronH always clamps dt at "
            "time_step_min, so it would compute a different model"
        )
    kind_to_hf = lambda kinds: [HF_LAYER_TYPES[kind] for kind in kinds]  # noqa: E731
    return {
        "architectures": [HF_ARCHITECTURE],
        "model_type": HF_MODEL_TYPE,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "layers_block_type": kind_to_hf(cfg.layer_kinds),
        "tie_word_embeddings": False,
        "layer_norm_epsilon": cfg.norm_eps,
        "initializer_range": cfg.initializer_range,
        "rescale_prenorm_residual": cfg.rescale_prenorm_residual,
        "residual_in_fp32": False,
        "use_bias": False,
        "mamba_num_heads": cfg.mamba.num_heads,
        "mamba_head_dim": cfg.mamba.head_dim,
        "ssm_state_size": cfg.mamba.state_size,
        "n_groups": cfg.mamba.n_groups,
        "conv_kernel": cfg.mamba.conv_kernel,
        "chunk_size": cfg.mamba.chunk_size,
        "use_conv_bias": cfg.mamba.use_conv_bias,
        "mamba_hidden_act": "silu",
        "time_step_min": cfg.mamba.time_step_min,
        "time_step_max": cfg.mamba.time_step_max,
        "time_step_floor": cfg.mamba.time_step_floor,
        "num_attention_heads": cfg.attention.num_heads,
        "num_key_value_heads": cfg.attention.num_kv_heads,
        "head_dim": cfg.attention_head_dim,
        "attention_bias": False,
        "intermediate_size": cfg.mlp.intermediate_size,
        "mlp_hidden_act": "relu2",
        "mlp_bias": False,
        "n_routed_experts": cfg.moe.num_experts,
        "num_experts_per_tok": cfg.moe.top_k,
        "moe_intermediate_size": cfg.moe.intermediate_size,
        "moe_shared_expert_intermediate_size": cfg.moe.shared_intermediate_size or 1,
        "moe_latent_size": cfg.moe.latent_size or None,
        "routed_scaling_factor": cfg.moe.routed_scaling_factor,
        "norm_topk_prob": cfg.moe.norm_topk_prob,
        "n_group": cfg.moe.n_group,
        "topk_group": cfg.moe.topk_group,
        "num_nextn_predict_layers": cfg.mtp.depth,
        "mtp_layers_block_type": kind_to_hf(parse_pattern(cfg.mtp.pattern)),
        "modelzoo_config": dataclasses.asdict(cfg),
    }


# Fields where our model has one fixed behaviour; another value in an HF config cannot be imported faithfully.
_FIXED_HF_FIELDS = {
    "tie_word_embeddings": False,
    "use_bias": False,
    "mamba_proj_bias": False,
    "attention_bias": False,
    "mlp_bias": False,
    "mamba_hidden_act": "silu",
    "mlp_hidden_act": "relu2",
}


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    """ModelConfig of a transformers NemotronH config.json dictionary."""
    for key, supported in _FIXED_HF_FIELDS.items():
        if key in hf and hf[key] != supported:
            raise ExportError(
                f"config.json: {key} = {hf[key]!r} is not supported (modelzoo implements {supported!r})"
            )
    if "modelzoo_config" in hf:
        try:
            return model_config_from_dict(hf["modelzoo_config"])
        except ConfigError as error:
            raise ExportError(f"config.json: modelzoo_config: {error}") from None
    hf_to_kind = {hf_name: kind for kind, hf_name in HF_LAYER_TYPES.items()}
    mtp_layers = hf.get("mtp_layers_block_type") or ["full_attention", "moe"]
    try:
        # unknown layer types pass through unchanged so that the error names them
        pattern = format_pattern([hf_to_kind.get(t, t) for t in _layer_types(hf)])
        mtp_pattern = format_pattern([hf_to_kind.get(t, t) for t in mtp_layers])
    except ConfigError as error:
        raise ExportError(f"config.json: {error}") from None
    # Fallbacks are transformers' NemotronHConfig defaults, for config.json files that omit a field.
    overrides = {
        "pattern": pattern,
        "vocab_size": hf.get("vocab_size", 131072),
        "hidden_size": hf.get("hidden_size", 4096),
        "norm_eps": hf.get("layer_norm_epsilon", 1e-5),
        "initializer_range": hf.get("initializer_range", 0.02),
        "rescale_prenorm_residual": hf.get("rescale_prenorm_residual", True),
        "mamba.num_heads": hf.get("mamba_num_heads", 128),
        "mamba.head_dim": hf.get("mamba_head_dim", 64),
        "mamba.state_size": hf.get("ssm_state_size", 128),
        "mamba.n_groups": hf.get("n_groups", 8),
        "mamba.conv_kernel": hf.get("conv_kernel", 4),
        "mamba.chunk_size": hf.get("chunk_size", 128),
        "mamba.use_conv_bias": hf.get("use_conv_bias", True),
        "mamba.time_step_min": hf.get("time_step_min", 0.001),
        "mamba.time_step_max": hf.get("time_step_max", 0.1),
        "mamba.time_step_floor": hf.get("time_step_floor", 1e-4),
        "mamba.dt_clamp_in_forward": True,
        "attention.num_heads": hf.get("num_attention_heads", 32),
        "attention.num_kv_heads": hf.get("num_key_value_heads") or hf.get("num_attention_heads", 32),
        "attention.head_dim": hf.get("head_dim", 128),
        "mlp.intermediate_size": hf.get("intermediate_size", 21504),
        "moe.num_experts": hf.get("n_routed_experts", 8),
        "moe.top_k": hf.get("num_experts_per_tok", 2),
        "moe.intermediate_size": hf.get("moe_intermediate_size", 7688),
        "moe.shared_intermediate_size": hf.get("moe_shared_expert_intermediate_size", 7688),
        "moe.latent_size": hf.get("moe_latent_size") or 0,
        "moe.routed_scaling_factor": hf.get("routed_scaling_factor", 1.0),
        "moe.norm_topk_prob": hf.get("norm_topk_prob", True),
        "moe.n_group": hf.get("n_group", 1),
        "moe.topk_group": hf.get("topk_group", 1),
        "mtp.depth": hf.get("num_nextn_predict_layers", 0),
        "mtp.pattern": mtp_pattern,
    }
    try:
        return apply_model_overrides(ModelConfig(), overrides)
    except ConfigError as error:
        raise ExportError(f"config.json: {error}") from None


def _layer_types(hf: dict[str, Any]) -> list[str]:
    if hf.get("layers_block_type"):
        return hf["layers_block_type"]
    if hf.get("hybrid_override_pattern"):  # older NemotronH configs
        letters = {"M": "linear_attention", "*": "full_attention", "-": "mlp", "E": "moe"}
        return [letters.get(letter, letter) for letter in hf["hybrid_override_pattern"]]
    raise ExportError("config.json: has neither layers_block_type nor hybrid_override_pattern")



# ---------------------------------------------------------------- weights


def _hf_name(name: str) -> str:
    return name if name.startswith(("lm_head.", "mtp.")) else f"model.{name}"


def _our_name(name: str) -> str:
    for prefix in ("model.", "backbone."):  # "backbone." in NVIDIA's original NemotronH checkpoints
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


_PER_EXPERT = re.compile(r"^(?P<prefix>.+\.experts)\.(?P<index>\d+)\.(?P<proj>up_proj|down_proj)\.weight$")


def _stack_experts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stack per-expert tensors (``experts.{e}.up_proj.weight``, the layout transformers' save_pretrained and
    NVIDIA's checkpoints use) into our [E, out, in] ``experts.up_proj``."""
    stacked: dict[str, dict[int, torch.Tensor]] = {}
    result = {}
    for name, tensor in state.items():
        match = _PER_EXPERT.match(name)
        if match:
            stacked.setdefault(f"{match['prefix']}.{match['proj']}", {})[int(match["index"])] = tensor
        else:
            result[name] = tensor
    for name, experts in stacked.items():
        if sorted(experts) != list(range(len(experts))):
            raise ExportError(f"{name}: expert indices {sorted(experts)} are not 0..{len(experts) - 1}")
        result[name] = torch.stack([experts[index] for index in range(len(experts))])
    return result


def hf_state_dict(model: HybridLM) -> dict[str, torch.Tensor]:
    """Our tensors under transformers' names (plus the zero shared experts transformers cannot go without)."""
    tensors = {_hf_name(name): tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    if not model.cfg.moe.shared_intermediate_size:
        hidden = model.cfg.hidden_size
        for index, kind in enumerate(model.cfg.layer_kinds):
            if kind == "moe":
                prefix = f"model.layers.{index}.mixer.shared_experts"
                tensors[f"{prefix}.up_proj.weight"] = torch.zeros(1, hidden)
                tensors[f"{prefix}.down_proj.weight"] = torch.zeros(hidden, 1)
    return tensors


def _tokenizer_config(tokenizer_json: dict[str, Any]) -> dict[str, Any]:
    """transformers' settings for a `tokenizers` file: a fast tokenizer whose first special token (our document
    separator, id 0) also ends a text, so generation stops at a document boundary."""
    separator = next((t["content"] for t in tokenizer_json.get("added_tokens", []) if t.get("id") == 0), None)
    config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    if separator is not None:
        config.update(eos_token=separator, bos_token=separator, pad_token=separator)
    return config


def to_hf(model: HybridLM, out_dir: str | Path, tokenizer: Path | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` loadable by ``transformers.NemotronHForCausalLM``, and
    ``tokenizer`` (a `tokenizers` JSON file) beside them for ``AutoTokenizer``.

    The directory appears complete or not at all (written next to it, then renamed).
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: already exists and is not an empty directory; choose a new output directory")
    config = json.dumps(hf_config(model.cfg), indent=2, sort_keys=True)
    tensors = hf_state_dict(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (staging / CONFIG_FILE).write_text(config)
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        if tokenizer is not None:
            shutil.copyfile(tokenizer, staging / TOKENIZER_FILE)
            tokenizer_config = _tokenizer_config(json.loads(tokenizer.read_text()))
            (staging / TOKENIZER_CONFIG_FILE).write_text(json.dumps(tokenizer_config, indent=2))
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def read_hf_config(directory: str | Path) -> dict[str, Any]:
    """config.json of a NemotronH directory, or ExportError saying why the directory is not one."""
    path = Path(directory)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ExportError(f"{path}: no {CONFIG_FILE}; expected a transformers NemotronH model directory")
    try:
        hf = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ExportError(f"{config_path}: not valid JSON ({error})") from None
    model_type = hf.get("model_type")
    if model_type != HF_MODEL_TYPE:
        architectures = ", ".join(hf.get("architectures") or []) or "unknown"
        raise ExportError(
            f"{path}: model_type is {model_type!r} (architectures: {architectures}); only {HF_MODEL_TYPE!r} "
            f"({HF_ARCHITECTURE}) can be imported"
        )
    return hf


def from_hf(directory: str | Path) -> HybridLM:
    """A HybridLM with the weights of a transformers NemotronH directory (``config.json`` + ``model.safetensors``)."""
    path = Path(directory)
    cfg = config_from_hf(read_hf_config(path))
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        sharded = (path / f"{WEIGHTS_FILE}.index.json").is_file()
        note = " (sharded checkpoints are not supported)" if sharded else ""
        raise ExportError(f"{path}: no {WEIGHTS_FILE}{note}")
    state = _stack_experts({_our_name(name): tensor for name, tensor in load_file(str(weights)).items()})
    if not cfg.moe.shared_intermediate_size:
        state = {name: tensor for name, tensor in state.items() if ".mixer.shared_experts." not in name}
    model = HybridLM(cfg)
    _load_exactly(model, state, str(weights))
    return model


def _load_exactly(model: HybridLM, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [name for name in expected if name in state and state[name].shape != expected[name].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor(s), e.g. {unexpected[:3]}")
    if wrong_shape:
        name = wrong_shape[0]
        problems.append(
            f"{name} has shape {tuple(state[name].shape)}, the config implies {tuple(expected[name].shape)}"
        )
    if problems:
        raise ExportError(f"{source}: does not match its config: " + "; ".join(problems))
    model.load_state_dict(state)


# ---------------------------------------------------------------- training checkpoints and CLI


def _locate_checkpoint(path: Path) -> tuple[Path, Path]:
    """(checkpoint directory, run directory) of a run directory (newest checkpoint) or a ``checkpoints/step-N``."""
    if (path / MARKER).is_file():
        return path, path.parent.parent
    latest = latest_checkpoint(path / "checkpoints")
    if latest is None:
        raise ExportError(f"{path}: neither a run directory with a complete checkpoint nor a checkpoint directory")
    return latest[1], path


def run_tokenizer(directory: str | Path) -> Path | None:
    """The subword tokenizer a run was trained with (the trainer copies it into the run directory), if any."""
    path = _locate_checkpoint(Path(directory))[1] / TOKENIZER_FILE
    return path if path.is_file() else None


def load_training_checkpoint(directory: str | Path) -> HybridLM:
    """The model of a training run directory (newest complete checkpoint) or of one ``checkpoints/step-N``."""
    step_dir, run_dir = _locate_checkpoint(Path(directory))
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ExportError(f"{run_dir}: no {CONFIG_FILE} next to the checkpoints; cannot tell the model config")
    try:
        recipe = Recipe.from_dict(json.loads(config_path.read_text())["recipe"])
    except (json.JSONDecodeError, KeyError, ConfigError) as error:
        raise ExportError(f"{config_path}: not a modelzoo run config ({error})") from None
    tensors, _ = load_checkpoint(step_dir, ["model"])
    model = HybridLM(recipe.model)
    _load_exactly(model, tensors["model"], str(step_dir / "model.pt"))
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelzoo.export", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="training run directory or checkpoints/step-N directory")
    parser.add_argument("--to", required=True, choices=["hf"], help="target format")
    parser.add_argument("out", help="output directory (must not exist or be empty)")
    args = parser.parse_args(argv)
    try:
        tokenizer = run_tokenizer(args.checkpoint)
        out = to_hf(load_training_checkpoint(args.checkpoint), args.out, tokenizer)
    except (ExportError, ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = [CONFIG_FILE, WEIGHTS_FILE] + ([TOKENIZER_FILE, TOKENIZER_CONFIG_FILE] if tokenizer else [])
    print("wrote " + ", ".join(str(out / name) for name in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
