"""HybridLM: embeddings -> pre-norm residual blocks per pattern -> final norm -> head (+ multi-token prediction).

Module and parameter names follow transformers' NemotronHForCausalLM (``embeddings``, ``layers.i.norm``,
``layers.i.mixer.*``, ``norm_f``, ``lm_head``), so export to that format is a rename.

Labels follow the transformers convention: ``labels`` is aligned with ``input_ids`` (usually the same tensor)
and shifted inside, so position t is scored on predicting ``labels[t + 1]``; -100 marks ignored positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from modelzoo import fp4 as fp4_module
from modelzoo import fp4_kernels
from modelzoo.backends import resolve_kernels
from modelzoo.blocks import Block, LayerCache, run_blocks
from modelzoo.config import ConfigError, FP4Config, ModelConfig, model_config_errors
from modelzoo.generation import GenerationResult, generate_greedy
from modelzoo.mamba2 import Mamba2Mixer, mixer_core
from modelzoo.mtp import MultiTokenPrediction, cross_entropy
from modelzoo.norms import RMSNorm


@dataclass
class ModelOutput:
    """``loss`` is None without labels. ``aux`` keys:

    - ``lm_loss``: next-token cross-entropy alone (tensor; None without labels), the number to compare runs on
    - ``moe_aux_loss``: sum of the MoE balancing losses included in ``loss`` (tensor)
    - ``moe_imbalance``: mean over MoE layers of max/mean expert load (float; None without MoE layers)
    - ``moe_imbalance_per_layer``: list of floats, ``expert_load``: list of [E] tensors, one per MoE layer
    - ``mtp_losses``: cross-entropy per MTP depth (floats; empty without MTP or labels)
    - ``fp4_error``: mean relative NVFP4 quantisation error of the NVFP4 layers (float; None when fp4 is off),
      ``fp4_stats``: the full dictionary of ``modelzoo.fp4.collect_stats``
    """

    loss: torch.Tensor | None
    logits: torch.Tensor
    aux: dict[str, Any] = field(default_factory=dict)


class HybridLM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        errors = model_config_errors(cfg)
        if errors:
            raise ConfigError("; ".join(errors))
        self.cfg = cfg
        self.kernels = resolve_kernels(cfg.backend)
        self.backend = self.kernels.name  # what "auto" picked
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(
            Block(cfg, kind, self._fp4_for_layer(index), self.kernels) for index, kind in enumerate(cfg.layer_kinds)
        )
        self.norm_f = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.mtp = MultiTokenPrediction(cfg, self.kernels) if cfg.mtp.depth else None
        init_weights(self, cfg)

    def _fp4_for_layer(self, index: int) -> FP4Config | None:
        """NVFP4 settings of block ``index``, or None for the high-precision first and last blocks."""
        fp4 = self.cfg.fp4
        in_fp4_range = fp4.bf16_first_layers <= index < self.cfg.num_layers - fp4.bf16_last_layers
        return fp4 if fp4.enabled and in_fp4_range else None

    def backbone(
        self, input_ids: torch.Tensor, caches: list[LayerCache] | None = None
    ) -> tuple[torch.Tensor, list[dict]]:
        """Hidden states after the last block, before the final norm, and the MoE statistics."""
        return run_blocks(self.layers, self.embeddings(input_ids), caches)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of already normalised hidden states (shared by the main model and the MTP depths)."""
        return self.lm_head(hidden)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        hidden, moe_stats = self.backbone(input_ids)
        logits = self.head(self.norm_f(hidden))
        aux: dict[str, Any] = {"lm_loss": None, "mtp_losses": []}
        loss = None
        if labels is not None:
            lm_loss = cross_entropy(logits[:, :-1], labels[:, 1:])
            loss = lm_loss
            if self.mtp is not None:
                mtp_losses, mtp_stats = self.mtp.losses(hidden, input_ids, labels, self.embeddings, self.head)
                moe_stats += mtp_stats
                if mtp_losses:
                    loss = loss + self.cfg.mtp.loss_weight / self.cfg.mtp.depth * torch.stack(mtp_losses).sum()
                aux["mtp_losses"] = [value.item() for value in mtp_losses]
            aux["lm_loss"] = lm_loss
        moe_aux_loss = sum((stats["aux_loss"] for stats in moe_stats), torch.zeros((), device=logits.device))
        if loss is not None:
            loss = loss + moe_aux_loss
        # One read of the device for all MoE layers; the layers themselves keep their statistics as tensors.
        imbalance = torch.stack([stats["imbalance"] for stats in moe_stats]).tolist() if moe_stats else []
        aux.update(
            moe_aux_loss=moe_aux_loss,
            moe_imbalance=sum(imbalance) / len(imbalance) if imbalance else None,
            moe_imbalance_per_layer=imbalance,
            expert_load=[stats["expert_load"] for stats in moe_stats],
        )
        fp4_stats = fp4_module.collect_stats(self) if self.cfg.fp4.enabled else {}
        aux.update(fp4_error=fp4_stats.get("fp4_error"), fp4_stats=fp4_stats)
        return ModelOutput(loss=loss, logits=logits, aux=aux)

    def compile_regions(self, **compile_options: Any) -> None:
        """Compile each block on its own with ``torch.compile`` (regional compilation).

        Compiling the whole model recompiles on every step and takes minutes; blocks are small, repeat, and
        have static shapes. The Mamba-2 core (conv, scan, gated norm) is one compiled function shared by all
        Mamba layers, so it compiles once; the rest of a Mamba block stays eager. Attention, MLP and MoE blocks
        are compiled whole. Compilation itself happens lazily, during the first training step (forward and
        backward), which is where callers should measure it. ``compile_options`` go to ``torch.compile``.
        """
        if self.cfg.fp4.enabled:
            fp4_kernels.ensure_built()  # a trace cannot build the extension; without it the regions trace the reference
        shared_core = torch.compile(mixer_core, **compile_options)
        blocks = list(self.layers)
        if self.mtp is not None:
            blocks += [block for depth in self.mtp.depths for block in depth.layers]
        for block in blocks:
            if block.kind == "mamba":
                block.mixer.compiled_core = shared_core
            else:
                block.compile(**compile_options)

    def new_caches(self, batch: int) -> list[LayerCache]:
        device = self.embeddings.weight.device
        return [block.empty_cache(batch, device) for block in self.layers]

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, *, speculative: bool = False) -> GenerationResult:
        """Greedy decoding; with ``speculative`` the MTP depths draft tokens that the main model verifies.

        Speculative output equals plain greedy output; ``acceptance_rate`` is the share of drafts accepted.
        """
        return generate_greedy(self, input_ids, max_new_tokens, speculative=speculative)


@torch.no_grad()
def init_weights(model: nn.Module, cfg: ModelConfig) -> None:
    """transformers' NemotronH initialisation: N(0, initializer_range) for linear, conv and embedding weights,
    Mamba's A_log = log(1..H), D = 1, dt_bias = softplus^-1(log-uniform dt in [time_step_min, time_step_max]),
    and Mamba out_proj rescaled by 1/sqrt(num_layers) (GPT-2 residual scheme) when rescale_prenorm_residual."""
    std = cfg.initializer_range
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Embedding)):
            nn.init.normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    for module in model.modules():
        if isinstance(module, Mamba2Mixer):
            _init_mamba(module, cfg)


def _init_mamba(mixer: Mamba2Mixer, cfg: ModelConfig) -> None:
    m = cfg.mamba
    mixer.A_log.copy_(torch.log(torch.arange(1, m.num_heads + 1, dtype=torch.float32)))
    mixer.D.fill_(1.0)
    log_min, log_max = math.log(m.time_step_min), math.log(m.time_step_max)
    dt = torch.exp(torch.rand(m.num_heads) * (log_max - log_min) + log_min).clamp(min=m.time_step_floor)
    mixer.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
    if cfg.rescale_prenorm_residual:
        nn.init.kaiming_uniform_(mixer.out_proj.weight, a=math.sqrt(5))
        mixer.out_proj.weight.div_(math.sqrt(cfg.num_layers))
