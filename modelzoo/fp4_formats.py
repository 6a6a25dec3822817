"""The two number formats of NVFP4: E2M1 elements and E4M3 block scales, emulated on float32 tensors.

E2M1 (1 sign, 2 exponent, 1 mantissa bit) holds {0, 0.5, 1, 1.5, 2, 3, 4, 6} and their negatives; its grid
spacing is 0.5 below 2, 1 in [2, 4) and 2 in [4, 6]. Rounding uses the "magic number" identity: adding
``C = 1.5 · spacing · 2**23`` to a float32 of magnitude below ``0.5 · spacing · 2**23`` leaves a sum whose last
mantissa bit is worth exactly ``spacing`` (the 1.5 keeps the sum inside one binade even for small negative
inputs, and is an even multiple of the spacing so ties still go to even), so the hardware's round-to-nearest-even
of that addition *is* E2M1 round-to-nearest-even, and the subtraction of ``C`` is exact. This keeps the emulation to a handful of vectorised passes, with no lookup tables.

E4M3 rounding of the block scales uses torch's ``float8_e4m3fn`` cast (round-to-nearest-even, subnormals down to
2**-9), clamped at 448 first because NVFP4 saturates scales instead of producing NaN.
"""

from __future__ import annotations

import torch

E2M1_MAX = 6.0
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
E4M3_MAX = 448.0

_EXPONENT_MASK = 0x7F800000
_MANTISSA_BITS = 23
# For a in [1, 4] the spacing is half the binade's power of two 2**e, so C = 1.5 · 2**(e - 1 + 23): raise the
# exponent by 22 and set the top mantissa bit.
_MAGIC_BITS_OFFSET = ((_MANTISSA_BITS - 1) << _MANTISSA_BITS) | (1 << (_MANTISSA_BITS - 1))
# Each element gets 8 random bits, as Blackwell's ``cvt.rs ... e2m1x4`` takes 32 random bits for four values.
_RANDOM_LEVELS = 256


def round_e4m3(scale: torch.Tensor) -> torch.Tensor:
    """Round non-negative float32 scales to the nearest E4M3 value (ties to even), saturating at 448."""
    return scale.clamp(max=E4M3_MAX).to(torch.float8_e4m3fn).to(torch.float32)


def _magic_constant_(magnitudes: torch.Tensor) -> torch.Tensor:
    """Turn |values| in [0, 6] into ``C = 1.5 · spacing · 2**23`` in place, from the E2M1 spacing there.

    Below 1 the spacing equals that of [1, 2), and from 4 up it equals that of [4, 8), so clamping to [1, 4] and
    keeping only the exponent bits yields the binade's power of two, from which C follows by a bit offset.
    """
    bits = magnitudes.clamp_(1.0, 4.0).view(torch.int32)
    return bits.bitwise_and_(_EXPONENT_MASK).add_(_MAGIC_BITS_OFFSET).view(torch.float32)


def round_e2m1_(values: torch.Tensor, magnitudes: torch.Tensor, noise_bits: torch.Tensor | None = None) -> torch.Tensor:
    """Round float32 ``values`` (already scaled into the E2M1 range) onto the E2M1 grid, in place.

    ``magnitudes`` must hold ``values.abs()``; it serves as scratch space and is overwritten. Magnitudes above 6
    saturate to 6. Without ``noise_bits`` rounding is to nearest with ties to even. ``noise_bits`` (uint8, same
    shape) selects stochastic rounding: each value is dithered by ``(bits - 127.5) / 256`` of the local grid
    spacing before rounding to nearest, which rounds away from the lower neighbour with probability equal to the
    fractional position between the two neighbours (to within 1/256), so the result is unbiased.
    """
    values.clamp_(-E2M1_MAX, E2M1_MAX)
    magic = _magic_constant_(magnitudes)
    if noise_bits is not None:
        dither = noise_bits.to(torch.float32).sub_((_RANDOM_LEVELS - 1) / 2)
        # spacing / 256 = C / 1.5 · 2**-23 / 2**8; the dither stays strictly inside half a spacing, so values already on
        # the grid are never moved and the neighbours reached are those of the undithered value's binade.
        values.add_(dither.mul_(magic).mul_(2.0 ** -(_MANTISSA_BITS + 8) / 1.5))
    return values.add_(magic).sub_(magic)


def random_bits(shape: torch.Size, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform random uint8 tensor of ``shape``, drawn from ``generator`` (or the global RNG when None).

    Drawing full-range int64 words and reinterpreting their bytes is several times cheaper on CPU than drawing one
    float per element.
    """
    count = int(torch.Size(shape).numel())
    words = torch.randint(
        -(2**63), 2**63 - 1, ((count + 7) // 8,), dtype=torch.int64, device=device, generator=generator
    )
    return words.view(torch.uint8)[:count].view(shape)
