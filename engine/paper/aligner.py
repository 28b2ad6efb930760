"""The alignment network, paper Eq. 4: text vector -> backbone item-embedding space."""

from __future__ import annotations

import torch
from torch import nn

from engine.config import AlignerConfig


class Aligner(nn.Module):
    """Eq. 4: ``e = W2 · GELU(W1 · t + b1) + b2``, a two-layer MLP.

    Args:
        text_dim: dimension of the encoder's vectors.
        embed_dim: dimension of the backbone's item-ID embedding.
        config: hidden width and dropout.
    """

    def __init__(self, text_dim: int, embed_dim: int, config: AlignerConfig | None = None):
        super().__init__()
        self.config = config or AlignerConfig()
        if text_dim <= 0 or embed_dim <= 0:
            raise ValueError("Aligner: text_dim and embed_dim must be > 0")
        self.text_dim = text_dim
        self.embed_dim = embed_dim
        self.net = nn.Sequential(
            nn.Linear(text_dim, self.config.hidden),
            nn.GELU(),
            nn.Dropout(self.config.dropout),
            nn.Linear(self.config.hidden, embed_dim),
        )
        nn.init.normal_(self.net[-1].weight, std=0.01)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, text_vec: torch.Tensor) -> torch.Tensor:
        """``[B, text_dim]`` -> ``[B, embed_dim]``."""
        return self.net(text_vec)
