"""How big a model and a training step are, from the config alone (no torch, no allocation), so a launch can
be forecast and refused before any worker tries to hold it.

``parameter_count`` counts the weight matrices and embeddings of ``HybridLM`` (norm weights and Mamba's
per-head vectors are left out: they are a fraction of a percent); tests check it against a built model.
Cost of a training step grows with parameters × tokens (the usual 6·N·D), which is how planning scales a
measured throughput from one config to another.
"""
from modelzoo.config import ModelConfig, Recipe, parse_pattern


def _mamba(cfg: ModelConfig) -> int:
    m = cfg.mamba
    inner = m.num_heads * m.head_dim
    conv_dim = inner + 2 * m.n_groups * m.state_size
    return cfg.hidden_size * (inner + conv_dim + m.num_heads) + conv_dim * m.conv_kernel + inner * cfg.hidden_size


def _attention(cfg: ModelConfig) -> int:
    a, head_dim = cfg.attention, cfg.attention_head_dim
    return 2 * cfg.hidden_size * head_dim * (a.num_heads + a.num_kv_heads)


def _mlp(cfg: ModelConfig) -> int:
    return 2 * cfg.hidden_size * cfg.mlp.intermediate_size


def _moe(cfg: ModelConfig) -> int:
    moe, hidden = cfg.moe, cfg.hidden_size
    width = moe.latent_size or hidden
    experts = moe.num_experts * 2 * width * moe.intermediate_size
    latent = 2 * hidden * moe.latent_size
    shared = 2 * hidden * moe.shared_intermediate_size
    return experts + latent + shared + moe.num_experts * hidden  # + the router


_PER_LAYER = {"mamba": _mamba, "attention": _attention, "mlp": _mlp, "moe": _moe}


def parameter_count(cfg: ModelConfig) -> int:
    """Weights of the model (main stack and MTP depths), embeddings and LM head counted once each."""
    stack = sum(_PER_LAYER[kind](cfg) for kind in cfg.layer_kinds)
    mtp = 0
    if cfg.mtp.depth:
        mtp_layers = sum(_PER_LAYER[kind](cfg) for kind in parse_pattern(cfg.mtp.pattern))
        mtp = cfg.mtp.depth * (mtp_layers + 2 * cfg.hidden_size * cfg.hidden_size)
    return 2 * cfg.vocab_size * cfg.hidden_size + stack + mtp


def tokens_per_step(recipe: Recipe) -> int:
    return recipe.train.batch_size * recipe.train.seq_len
