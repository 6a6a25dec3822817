"""Data loading: the blend sampler over three corpora against the same sampler on one corpus, side by side, and
the cost of tokenizing with the BPE tokenizer against the byte tokenizer.

Loader: ``BlendSampler.next_batch`` (what the trainer calls every step) on memory-mapped shards, batch 8 × 512
tokens, for ``stdlib`` alone and for ``stdlib`` 0.5 / ``python-docs`` 0.25 / ``debian-copyright`` 0.25; the two
are timed in alternating rounds so machine load hits both alike. Tokenizing: encode the same 2 MiB of the
stdlib training split with a BPE of ``--vocab`` tokens trained on the three corpora, and with bytes.

    .venv/bin/python benchmarks/data_loader.py [--batches 400] [--rounds 5] [--vocab 4096]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelzoo.config import DataConfig  # noqa: E402
from modelzoo.data import BlendSampler, build_blend  # noqa: E402
from modelzoo.tokenizer import ByteTokenizer  # noqa: E402

BATCH, SEQ = 8, 512
SINGLE = {"stdlib": 1.0}
BLEND = {"stdlib": 0.5, "python-docs": 0.25, "debian-copyright": 0.25}
TOKENIZE_BYTES = 2 * 2**20


def loader_tokens_per_s(cache: Path, weights: dict[str, float], batches: int) -> float:
    blend = build_blend(DataConfig(blend=weights), cache_root=cache)
    sampler = BlendSampler({n: c.train for n, c in blend.corpora.items()}, blend.weights, SEQ, BATCH, seed=0)
    started = time.perf_counter()
    for _ in range(batches):
        sampler.next_batch()
    return batches * BATCH * SEQ / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=4096)
    args = parser.parse_args()
    results: dict[str, object] = {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    with tempfile.TemporaryDirectory(prefix="flightdeck-data-bench-") as scratch:
        cache = Path(scratch)
        started = time.perf_counter()
        build_blend(DataConfig(blend=BLEND), cache_root=cache)
        results["build_three_corpora_byte_s"] = round(time.perf_counter() - started, 2)

        single, blended = [], []
        for _ in range(args.rounds):
            single.append(loader_tokens_per_s(cache, SINGLE, args.batches))
            blended.append(loader_tokens_per_s(cache, BLEND, args.batches))
        results["loader_single_tokens_per_s"] = round(statistics.median(single))
        results["loader_blend3_tokens_per_s"] = round(statistics.median(blended))
        results["loader_blend3_over_single"] = round(statistics.median(b / s for b, s in zip(blended, single)), 3)

        started = time.perf_counter()
        bpe = build_blend(DataConfig(blend=BLEND, tokenizer="bpe", bpe_vocab_size=args.vocab), cache_root=cache)
        results["bpe_train_and_shard_three_corpora_s"] = round(time.perf_counter() - started, 2)
        stdlib = build_blend(DataConfig(corpus="stdlib"), cache_root=cache).corpora["stdlib"]
        text = bytes(stdlib.train.window(0, TOKENIZE_BYTES).astype("uint8"))  # byte shard = the text (+ separators)
        text = text.replace(b"\x00", b"\n")
        for name, tokenizer in (("bpe", bpe.tokenizer), ("byte", ByteTokenizer())):
            timings, count = [], 0
            for _ in range(args.rounds):
                started = time.perf_counter()
                count = len(tokenizer.encode(text))
                timings.append(time.perf_counter() - started)
            seconds = statistics.median(timings)
            results[f"{name}_encode_tokens_per_s"] = round(count / seconds)
            results[f"{name}_encode_mib_per_s"] = round(len(text) / seconds / 2**20, 2)
            results[f"{name}_bytes_per_token"] = round(len(text) / count, 3)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
