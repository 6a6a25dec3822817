"""The two number formats of NVFP4, E2M1 elements and E4M3 block scales, emulated on float32 tensors.

E2M1 (2 exponent bits, 1 mantissa bit) holds {0, 0.5, 1, 1.5, 2, 3, 4, 6} and their negatives; E4M3 ("fn": no
infinities, 3 mantissa bits) runs from the subnormal 2**-9 to 448. Both are rounded with the "magic number"
identity: adding ``C = 1.5 · spacing · 2**23`` to a float32 of magnitude below ``0.5 · spacing · 2**23`` leaves a
sum whose last mantissa bit is worth exactly ``spacing``, so the hardware's round-to-nearest-even of that
addition *is* round-to-nearest-even onto the format's grid, and subtracting ``C`` again is exact. The factor 1.5
keeps the sum inside one binade for negative values too, and is an even multiple of the spacing so ties still go
to even. The spacing follows from the value's binade, clamped below at the smallest normal binade (whose spacing
the subnormals share) and above at the top binade. Everything is a few in-place vectorised passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_FLOAT32_MANTISSA_BITS = 23
_FLOAT32_EXPONENT_MASK = 0x7F800000
# Each element gets 8 random bits, as Blackwell's ``cvt.rs ... e2m1x4`` takes 32 random bits for four values.
_RANDOM_LEVELS = 256


@dataclass(frozen=True)
class FloatFormat:
    mantissa_bits: int
    min_normal: float  # smallest normal value; subnormals below it share its spacing
    top_binade: float  # power of two starting the highest binade
    max_value: float  # largest finite value; larger magnitudes saturate to it

    def magic_offset(self) -> int:
        """Bits to add to the float32 exponent field of ``2**e`` to obtain ``C = 1.5 · 2**(e - m) · 2**23``."""
        shift = _FLOAT32_MANTISSA_BITS - self.mantissa_bits
        return (shift << _FLOAT32_MANTISSA_BITS) | (1 << (_FLOAT32_MANTISSA_BITS - 1))


E2M1 = FloatFormat(mantissa_bits=1, min_normal=1.0, top_binade=4.0, max_value=6.0)
E4M3 = FloatFormat(mantissa_bits=3, min_normal=2.0**-6, top_binade=256.0, max_value=448.0)


def _magic_constant_(magnitudes: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """Turn float32 magnitudes into the rounding constants ``C`` of ``fmt`` at those magnitudes, in place."""
    bits = magnitudes.clamp_(fmt.min_normal, fmt.top_binade).view(torch.int32)
    return bits.bitwise_and_(_FLOAT32_EXPONENT_MASK).add_(fmt.magic_offset()).view(torch.float32)


def round_to_format_(
    values: torch.Tensor, magnitudes: torch.Tensor, fmt: FloatFormat, noise_bits: torch.Tensor | None = None
) -> torch.Tensor:
    """Round float32 ``values`` onto the grid of ``fmt`` in place, saturating at its largest value.

    ``magnitudes`` must hold ``values.abs()``; it serves as scratch space and is overwritten. Without
    ``noise_bits`` rounding is to nearest with ties to even. ``noise_bits`` (uint8, same shape) selects
    stochastic rounding: each value is dithered by ``(bits - 127.5) / 256`` of the local grid spacing before
    rounding to nearest, which moves it to the upper neighbour with probability equal to its fractional position
    between the two neighbours (to within 1/256), so the result is unbiased.
    """
    values.clamp_(-fmt.max_value, fmt.max_value)
    magic = _magic_constant_(magnitudes, fmt)
    if noise_bits is not None:
        centred = noise_bits.to(torch.float32).sub_((_RANDOM_LEVELS - 1) / 2)
        # spacing / 256 = C / 1.5 · 2**-23 / 256. The dither stays strictly inside half a spacing, so values on the
        # grid never move and the neighbours reached are those of the undithered value's binade.
        values.addcmul_(centred, magic, value=2.0 ** -(_FLOAT32_MANTISSA_BITS + 8) / 1.5)
    return values.add_(magic).sub_(magic)


def round_e2m1_(values: torch.Tensor, magnitudes: torch.Tensor, noise_bits: torch.Tensor | None = None) -> torch.Tensor:
    """E2M1 rounding of scaled elements in place (see ``round_to_format_``); magnitudes above 6 saturate to 6."""
    return round_to_format_(values, magnitudes, E2M1, noise_bits)


def round_e4m3(scales: torch.Tensor) -> torch.Tensor:
    """Round non-negative float32 scales to the nearest E4M3 value (ties to even), saturating at 448."""
    rounded = scales.clone()
    return round_to_format_(rounded, scales.clone(), E4M3)


# Stochastic rounding's noise is a counter-based hash of a per-tensor seed and each element's index, as on
# hardware a random-bit generator feeds the rounding unit: the fused CPU kernels (csrc/fp4_blocks.cpp) compute
# the same bits inside their element loop instead of reading them from memory. One 32-bit seed is drawn from the
# generator per tensor, so restoring its state reproduces a run bit for bit. The hash is a two-round
# multiply-xorshift with low bias; its multipliers are below 2**31, so their products with 32-bit values stay
# exact in int64 tensor arithmetic (as does the index product, for tensors of fewer than 2**31 elements).
_INDEX_MULTIPLIER = 0x9E3779B1
_MIX_MULTIPLIERS = (0x21F0AAAD, 0x735A2D97)
_LOW_32_BITS = 0xFFFFFFFF


def noise_seed(device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """A 0-d int64 tensor holding 32 random bits, drawn from ``generator`` (or the global RNG when None)."""
    return torch.randint(0, 2**32, (), dtype=torch.int64, device=device, generator=generator)


def hashed_bits(seed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The uint8 noise of ``shape`` (row-major element indices) for ``seed``."""
    count = int(torch.Size(shape).numel())
    x = (torch.arange(count, dtype=torch.int64, device=seed.device) * _INDEX_MULTIPLIER + seed) & _LOW_32_BITS
    for multiplier, shift in zip(_MIX_MULTIPLIERS, (16, 15)):
        x = ((x ^ (x >> shift)) * multiplier) & _LOW_32_BITS
    x = x ^ (x >> 15)
    return (x >> 24).to(torch.uint8).view(shape)


def random_bits(shape: torch.Size, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform random uint8 tensor of ``shape``: ``hashed_bits`` of one seed drawn from ``generator`` (or the global
    RNG when None)."""
    return hashed_bits(noise_seed(device, generator), shape)
