"""Greedy generation with caches, and self-speculative decoding with the MTP depths as drafters."""

import pytest
import torch

from modelzoo.config import apply_model_overrides, load_recipe
from modelzoo.model import HybridLM

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = load_recipe("tiny-ci").model


def _model(**overrides) -> HybridLM:
    torch.manual_seed(0)
    # float64 so that cached and parallel evaluation cannot disagree on a near-tie of the argmax
    return HybridLM(apply_model_overrides(TINY, overrides)).double().eval()


def _greedy_without_cache(model: HybridLM, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    tokens = prompt
    for _ in range(steps):
        tokens = torch.cat([tokens, model(tokens).logits[:, -1:].argmax(-1)], dim=1)
    return tokens


def test_cached_greedy_equals_recomputing_the_whole_sequence():
    model = _model(pattern="M*ME-")
    prompt = torch.randint(0, 256, (2, 9))
    result = model.generate(prompt, 8)
    assert result.acceptance_rate is None
    assert torch.equal(result.tokens, _greedy_without_cache(model, prompt, 8))


@pytest.mark.parametrize("depth", [1, 3])
def test_speculative_equals_plain_greedy(depth):
    model = _model(**{"mtp.depth": depth})
    prompt = torch.randint(0, 256, (1, 7))
    plain = model.generate(prompt, 12)
    speculative = model.generate(prompt, 12, speculative=True)
    assert torch.equal(speculative.tokens, plain.tokens)
    assert 0.0 <= speculative.acceptance_rate <= 1.0


def test_perfect_drafts_are_all_accepted_and_save_passes():
    # Make every MTP depth a copy of what the main model would say: identical heads and a main model whose
    # prediction ignores history (all blocks zeroed), so the drafts always agree with the verifier.
    model = _model(pattern="-", **{"mtp.depth": 2, "mtp.pattern": "-"})
    with torch.no_grad():
        model.layers[0].mixer.down_proj.weight.zero_()
        for depth in model.mtp.depths:
            depth.layers[0].mixer.down_proj.weight.zero_()
            depth.eh_proj.weight.zero_()
            depth.eh_proj.weight[:, TINY.hidden_size :].copy_(torch.eye(TINY.hidden_size))  # pass the token embedding
    prompt = torch.randint(0, 256, (1, 4))
    plain = model.generate(prompt, 9)
    speculative = model.generate(prompt, 9, speculative=True)
    assert torch.equal(speculative.tokens, plain.tokens)
    assert speculative.acceptance_rate == 1.0
    assert speculative.main_model_passes < plain.main_model_passes


def test_bad_generation_requests():
    model = _model()
    with pytest.raises(ValueError, match="mtp.depth"):
        model.generate(torch.zeros(1, 3, dtype=torch.long), 4, speculative=True)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(torch.zeros(1, 3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="batch size 1"):
        _model(**{"mtp.depth": 1}).generate(torch.zeros(2, 3, dtype=torch.long), 4, speculative=True)
