"""Head detectors: which heads attend to the previous token, to an earlier copy of the current
token, to the token after it (induction), and which heads copy what they attend to.

    tokens = repeated_random_tokens(64, half, d_vocab, generator)
    previous_token_scores(model, tokens)         # (layer, head): mean attention to q - 1
    duplicate_token_scores(model, tokens, half)  # attention to q - half in the second half
    induction_scores(model, tokens, half)        # prefix matching: attention to q - half + 1
    copying_scores(model)                        # (layer, head): positive share of OV eigenvalues

The three attention scores are means of the head's pattern over a batch of [r, r] sequences
(patterns.offset_score); each lies in [0, 1]. Copying follows Elhage et al. (2021): the full OV
circuit W_E W_V W_O W_U of a copying head has mostly positive eigenvalues, and the score is
sum(Re lambda) over positive-real-part ones divided by sum |lambda|, in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.transformers.circuits import ov_circuit
from mechinterp.transformers.interface import size
from mechinterp.transformers.patterns import attention_patterns, offset_score


def _per_head(model: nn.Module, tokens: torch.Tensor, offset: int, first_query: int) -> torch.Tensor:
    patterns = attention_patterns(model, tokens)
    return torch.stack([offset_score(patterns[layer], offset, first_query)
                        for layer in range(size(model, "n_layers"))])


def previous_token_scores(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """(layer, head) mean attention from each position to the one before it."""
    return _per_head(model, tokens, offset=-1, first_query=1)


def duplicate_token_scores(model: nn.Module, tokens: torch.Tensor, half: int) -> torch.Tensor:
    """(layer, head) attention from the second half to the same token in the first half."""
    return _per_head(model, tokens, offset=-half, first_query=half)


def induction_scores(model: nn.Module, tokens: torch.Tensor, half: int) -> torch.Tensor:
    """(layer, head) prefix matching: attention from the second half to the token that followed
    the current token's first occurrence."""
    return _per_head(model, tokens, offset=-(half - 1), first_query=half)


def positive_eigenvalue_share(matrix: torch.Tensor) -> float:
    """sum of the positive real parts of the eigenvalues over the sum of their moduli."""
    eigenvalues = torch.linalg.eigvals(matrix.double())
    return float(eigenvalues.real.clamp(min=0).sum() / eigenvalues.abs().sum())


def copying_scores(model: nn.Module) -> torch.Tensor:
    """(layer, head) positive share of the eigenvalues of each head's full OV circuit."""
    return torch.tensor([[positive_eigenvalue_share(ov_circuit(model, layer, head))
                          for head in range(size(model, "n_heads"))]
                         for layer in range(size(model, "n_layers"))])
