"""Nemotron-H's ungated squared-ReLU MLP: ``down_proj(relu(up_proj(x)) ** 2)``."""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.config import FP4Config
from modelzoo.fp4 import make_linear


class MLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, fp4: FP4Config | None) -> None:
        super().__init__()
        self.up_proj = make_linear(hidden_size, intermediate_size, False, fp4)
        self.down_proj = make_linear(intermediate_size, hidden_size, False, fp4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(torch.relu(self.up_proj(x)).square())
