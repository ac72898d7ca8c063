"""Q-, K- and V-composition between heads of different layers, and a random-matrix baseline.

    composition_score(left, right)             # ||left @ right||_F / (||left||_F ||right||_F)
    scores = all_composition_scores(model, "K")  # (layer, head, layer, head), 0 unless the left
                                                 # head's layer is below the right head's
    baseline = random_composition_baseline(d_model, d_head, samples=200, generator=g)

Elhage et al. (2021): a later head reads what an earlier head wrote through its query (Q), its key
(K) or its value (V). With the earlier head's W_OV = W_V W_O and the later head's
W_QK = W_Q W_K^T (row-vector convention, x W), the composition matrices are
W_OV^left W_QK^right (Q), W_OV^left (W_QK^right)^T (K) and W_OV^left W_OV^right (V); the score is
the Frobenius norm of the product over the product of the norms, the same definition and layout as
TransformerLens's all_composition_scores. The scores of trained heads are read against those of
random matrices of the same low rank, which are not zero (products of random matrices in d_model
dimensions keep about 1/sqrt(d_model) of their norm). Float64 throughout.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.transformers.circuits import head_ov, head_qk
from mechinterp.transformers.interface import all_heads, size

MODES = ("Q", "K", "V")


def composition_score(left: torch.Tensor, right: torch.Tensor) -> float:
    """||left @ right||_F / (||left||_F * ||right||_F)."""
    left, right = left.double(), right.double()
    return float(torch.linalg.norm(left @ right) / (torch.linalg.norm(left) * torch.linalg.norm(right)))


def _right_matrix(model: nn.Module, layer: int, head: int, mode: str) -> torch.Tensor:
    if mode == "Q":
        return head_qk(model, layer, head)
    if mode == "K":
        return head_qk(model, layer, head).T
    if mode == "V":
        return head_ov(model, layer, head)
    raise ValueError(f"composition mode must be one of {', '.join(MODES)}, got {mode!r}")


@torch.no_grad()
def all_composition_scores(model: nn.Module, mode: str) -> torch.Tensor:
    """(layer, head, layer, head) scores of left head (first two) into right head (last two)."""
    layers, heads = size(model, "n_layers"), size(model, "n_heads")
    scores = torch.zeros(layers, heads, layers, heads, dtype=torch.float64)
    for left_layer, left_head in all_heads(model):
        left = head_ov(model, left_layer, left_head)
        for right_layer, right_head in all_heads(model):
            if right_layer > left_layer:
                right = _right_matrix(model, right_layer, right_head, mode)
                scores[left_layer, left_head, right_layer, right_head] = composition_score(left, right)
    return scores


def random_low_rank(d_model: int, d_head: int, generator: torch.Generator) -> torch.Tensor:
    """A (d_model, d_model) product of two Gaussian (d_model, d_head) factors: a random W_OV."""
    first = torch.randn(d_model, d_head, generator=generator, dtype=torch.float64)
    second = torch.randn(d_head, d_model, generator=generator, dtype=torch.float64)
    return first @ second


def random_composition_baseline(d_model: int, d_head: int, samples: int = 200,
                                generator: torch.Generator | None = None) -> torch.Tensor:
    """(samples,) composition scores of pairs of random rank-d_head matrices."""
    generator = generator or torch.Generator().manual_seed(0)
    return torch.tensor([composition_score(random_low_rank(d_model, d_head, generator),
                                           random_low_rank(d_model, d_head, generator))
                         for _ in range(samples)], dtype=torch.float64)
