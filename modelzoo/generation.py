"""Greedy decoding with layer caches, optionally self-speculative with the MTP depths as draft heads.

Speculative round: the main model's next token ``t0`` is known; the MTP depths draft ``d1..dD`` after it;
the main model reads ``t0, d1..dD`` in one pass and keeps the drafts up to the first disagreement with its
own greedy choice, plus its own token after them. Mamba states cannot be rewound, so after a rejection the
caches are restored from a snapshot and only the accepted tokens are fed again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from modelzoo.blocks import LayerCache
    from modelzoo.model import HybridLM


@dataclass
class GenerationResult:
    tokens: torch.Tensor  # [b, prompt + max_new_tokens]: the prompt followed by the generated tokens
    acceptance_rate: float | None  # accepted drafts / proposed drafts; None without speculation
    main_model_passes: int  # forward passes of the main model after the prompt


def _greedy_next(model: HybridLM, hidden: torch.Tensor) -> torch.Tensor:
    return model.head(model.norm_f(hidden)).argmax(-1)


def generate_greedy(
    model: HybridLM, input_ids: torch.Tensor, max_new_tokens: int, *, speculative: bool
) -> GenerationResult:
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be [batch, length>0], got shape {tuple(input_ids.shape)}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    was_training = model.training
    model.eval()
    try:
        if speculative:
            return _speculative(model, input_ids, max_new_tokens)
        return _plain(model, input_ids, max_new_tokens)
    finally:
        model.train(was_training)


def _plain(model: HybridLM, input_ids: torch.Tensor, max_new_tokens: int) -> GenerationResult:
    caches = model.new_caches(input_ids.shape[0])
    hidden, _ = model.backbone(input_ids, caches)
    tokens = [_greedy_next(model, hidden[:, -1:])]
    for _ in range(max_new_tokens - 1):
        hidden, _ = model.backbone(tokens[-1], caches)
        tokens.append(_greedy_next(model, hidden))
    return GenerationResult(torch.cat([input_ids, *tokens], dim=1), None, max_new_tokens - 1)


def _draft(model: HybridLM, main_hidden: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
    """Drafts [1, D] for the positions after ``sequence`` (whose last token the main model has not read yet).

    The MTP streams are recomputed over the whole history: they keep no caches of their own.
    """
    length = main_hidden.shape[1]
    extended, hidden = sequence, main_hidden
    for k, depth in enumerate(model.mtp.depths, start=1):
        hidden, _ = depth(hidden, model.embeddings(extended[:, k : k + length]))
        draft = model.head(depth.final_norm(hidden[:, -1:])).argmax(-1)
        extended = torch.cat([extended, draft], dim=1)
    return extended[:, sequence.shape[1] :]


def _speculative(model: HybridLM, input_ids: torch.Tensor, max_new_tokens: int) -> GenerationResult:
    if model.mtp is None:
        raise ValueError("speculative decoding needs MTP draft heads: set mtp.depth > 0")
    if input_ids.shape[0] != 1:
        raise ValueError(f"speculative decoding supports batch size 1, got {input_ids.shape[0]}")
    caches = model.new_caches(1)
    history, _ = model.backbone(input_ids, caches)  # main hidden states of every token read so far
    sequence = torch.cat([input_ids, _greedy_next(model, history[:, -1:])], dim=1)
    proposed = accepted = passes = 0
    while sequence.shape[1] - input_ids.shape[1] < max_new_tokens:
        drafts = _draft(model, history, sequence)
        snapshot = _copy_caches(caches)
        verify_input = torch.cat([sequence[:, -1:], drafts], dim=1)
        verify_hidden, _ = model.backbone(verify_input, caches)
        passes += 1
        choices = _greedy_next(model, verify_hidden)  # main model's token after each verify position
        agree = (choices[0, :-1] == drafts[0]).long()
        n_accepted = int(agree.cumprod(0).sum())
        proposed += drafts.shape[1]
        accepted += n_accepted
        if n_accepted < drafts.shape[1]:
            caches[:] = snapshot
            verify_hidden, _ = model.backbone(verify_input[:, : n_accepted + 1], caches)
            passes += 1
        history = torch.cat([history, verify_hidden], dim=1)
        sequence = torch.cat([sequence, drafts[:, :n_accepted], choices[:, n_accepted : n_accepted + 1]], dim=1)
    end = input_ids.shape[1] + max_new_tokens
    return GenerationResult(sequence[:, :end], accepted / proposed if proposed else 0.0, passes)


def _copy_caches(caches: list[LayerCache]) -> list[LayerCache]:
    # Layers rebind their cache tensors instead of writing into them, so a shallow copy is a snapshot.
    return [copy.copy(cache) for cache in caches]
