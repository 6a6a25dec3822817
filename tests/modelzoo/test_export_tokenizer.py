"""A run trained with the BPE tokenizer exports it beside the weights: transformers' AutoTokenizer loads it and
gives the trainer's token ids, and the model it loads scores those ids as ours does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, NemotronHForCausalLM

from modelzoo.export import from_hf, main
from modelzoo.tokenizer import BPETokenizer
from tests.modelzoo.train_runner import run_train

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("single_thread")]
TEXT = "def parse(tokens):\n    return [t.strip() for t in tokens]  # see the language reference\n"


def test_a_bpe_run_exports_a_tokenizer_that_transformers_loads(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    result = run_train(run, tmp_path / "cache", {"data.corpus": "python-docs", "data.tokenizer": "bpe",
                                                 "data.bpe_vocab_size": 320, "vocab_size": 320, "train.max_steps": 2,
                                                 "train.eval_every": 2, "train.checkpoint_every": 2})
    assert result.returncode == 0, result.stderr
    assert main(["--checkpoint", str(run), "--to", "hf", str(tmp_path / "hf")]) == 0
    assert "tokenizer.json" in capsys.readouterr().out

    ours = BPETokenizer(run / "tokenizer.json")
    theirs = AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = theirs(TEXT, add_special_tokens=False)["input_ids"]
    assert ids == ours.encode(TEXT.encode()).tolist() and len(ids) < 0.8 * len(TEXT)  # subwords, not bytes
    assert theirs.decode(ids) == TEXT and theirs.eos_token_id == 0 and theirs.vocab_size == ours.vocab_size
    cached = next((tmp_path / "cache").glob("python-docs-*/tokenizer.json"))
    assert cached.read_bytes() == (run / "tokenizer.json").read_bytes()  # the one the shards were made with

    model = NemotronHForCausalLM.from_pretrained(tmp_path / "hf").eval()
    batch = torch.tensor([ids])
    with torch.no_grad():
        expected = from_hf(tmp_path / "hf").eval()(batch).logits
        torch.testing.assert_close(model(batch).logits, expected, rtol=1e-4, atol=1e-4)
    assert np.isfinite(expected.numpy()).all()
