"""NVFP4 training emulation (arXiv 2509.25149), the public surface of the ``fp4_*`` modules.

- ``fake_quantize(x, blocks=..., rounding=..., generator=...)``: quantize to NVFP4 and back; ``quantize(...)``
  gives the ``NVFP4Tensor`` itself (E2M1 elements, E4M3 block scales, tensor scale) (``fp4_quant``).
- ``linear_fn(x, weight, fp4, bias=None, stats=None)``, ``make_linear(...)``, ``FP4Linear``: linear layers whose
  three GEMMs run on NVFP4-quantized operands when ``fp4.enabled`` (``fp4_linear``).
- ``collect_stats(model)``: mean quantization error over the modules holding an ``FP4Stats``, for logging.

Number formats live in ``fp4_formats``, the random Hadamard transform in ``fp4_hadamard``.
"""

from modelzoo.fp4_linear import FP4Linear, FP4Stats, collect_stats, linear_fn, make_linear
from modelzoo.fp4_quant import NVFP4Tensor, fake_quantize, quantize

__all__ = [
    "FP4Linear",
    "FP4Stats",
    "NVFP4Tensor",
    "collect_stats",
    "fake_quantize",
    "linear_fn",
    "make_linear",
    "quantize",
]
