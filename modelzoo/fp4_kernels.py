"""Fused CPU kernels for the NVFP4 round trip and the wgrad Hadamard rotation (``csrc/fp4_blocks.cpp``), built
on first use.

The reference quantisation in ``fp4_quant`` makes about a dozen passes over a tensor plus padded and cropped
copies, several passes broadcasting a per-block factor over 16-element inner dimensions, which PyTorch's CPU loops
run without vector instructions, and some fifteen small operations for the scales; on the benchmark model that was
most of the NVFP4 step's overhead. The round-trip kernel does the same float32 arithmetic in two passes (block
maxima; scales, rounding, scaling back) and gives bit-identical results, stochastic rounding included: both hash
the same seed, drawn from the same generator, into each element's noise. The rotation is a fast
Walsh-Hadamard transform instead of a batch of 16x16 matrix products: equal to the matrix form up to float32
rounding (the sums are taken in another order).

The extension is compiled for this machine's CPU (``-march=native``) with ``torch.utils.cpp_extension`` the first
time NVFP4 runs on CPU in a process, then loaded from the build cache (``$TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``); the name carries a digest of the CPU's feature flags, so a cache shared between
different machines never loads code built for another CPU. Without a C++ compiler, or with
``FLIGHTDECK_FP4_KERNELS=0``, quantisation falls back to the reference path, with one warning for the former.

The kernels are ``torch.library`` custom ops with fake implementations, so ``torch.compile`` regions call them
without graph breaks; ``ensure_built()`` must run before tracing (``HybridLM.compile_regions`` does).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "fp4_blocks.cpp"
# No fused multiply-adds: PyTorch multiplies and adds separately, and the kernels must round as it does.
# -fno-trapping-math lets GCC turn the clamps' float compares into vector selects (same values, NaN included):
# without it, on AVX2 CPUs, the element loop stayed scalar with data-dependent branches, 4-5x slower than the
# reference it replaces; AVX-512's masked instructions had hidden that.
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-march=native", "-fopenmp"]
ENV_SWITCH = "FLIGHTDECK_FP4_KERNELS"

_extension = None  # the loaded module once built; stays None when disabled or when the build failed
_tried = False


def _cpu_digest() -> str:
    """Short digest of the CPU's identity and feature flags (``-march=native`` code runs only on such a CPU)."""
    try:  # every core repeats the same lines; one copy of each is the identity
        lines = {line for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith(("flags", "Features", "model name"))}
    except OSError:
        lines = {platform.processor()}
    identity = platform.machine() + "".join(sorted(lines))
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


def enabled_by_environment() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def ensure_built() -> bool:
    """Build (or load from the cache) the extension once per process; says whether the kernels are usable."""
    global _extension, _tried
    if _tried:
        return _extension is not None
    _tried = True
    if not enabled_by_environment():
        return False
    from torch.utils.cpp_extension import load

    started = time.monotonic()
    try:
        _extension = load(
            name=f"flightdeck_fp4_blocks_{_cpu_digest()}",
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as error:  # no compiler, no ninja, an unsupported -march: the reference path still works
        log.warning("NVFP4 kernels unavailable, using the slower reference quantisation: %s", error)
    else:
        if (seconds := time.monotonic() - started) > 2:  # a build, not a load from the cache
            log.info("built the NVFP4 CPU kernels in %.0f s (once per machine)", seconds)
    return _extension is not None


def usable_for(x: torch.Tensor) -> bool:
    """Whether the fused kernels serve ``x``: a CPU tensor, and the extension built (here, on first use, unless
    this runs inside a ``torch.compile`` trace, which cannot build anything)."""
    if x.device.type != "cpu":
        return False
    if not _tried and not torch.compiler.is_compiling():
        ensure_built()
    return _extension is not None


@torch.library.custom_op("modelzoo::fp4_round_trip", mutates_args=())
def round_trip(
    x: torch.Tensor,
    block_rows: int,
    block_cols: int,
    groups: torch.Tensor | None,
    num_groups: int,
    noise_seed: torch.Tensor | None,
) -> torch.Tensor:
    """NVFP4 quantise-dequantise of every matrix of the contiguous float32 ``x`` (batch, rows, cols) in blocks of
    ``block_rows`` x ``block_cols``. ``groups`` (int64, one id per block, (batch, row_blocks, col_blocks)) gives
    each of ``num_groups`` groups its own tensor scale; ``noise_seed`` (0-d int64, from
    ``fp4_formats.noise_seed``) selects stochastic rounding with the noise of ``fp4_formats.random_bits``."""
    return _extension.round_trip(x, block_rows, block_cols, groups, num_groups, noise_seed)


@round_trip.register_fake
def _(x, block_rows, block_cols, groups, num_groups, noise_seed) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("modelzoo::fp4_rotate_rows", mutates_args=())
def rotate_rows(x: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """``H diag(signs) / 4`` applied to every 16-row slice of the contiguous float32 2-D ``x`` (fast
    Walsh-Hadamard transform)."""
    return _extension.rotate_rows(x, signs)


@rotate_rows.register_fake
def _(x: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)
