"""A head's full QK and OV circuits: what it attends to and what it writes, token to token.

    qk = qk_circuit(model, layer, head)      # (d_vocab, d_vocab): query token x key token
    ov = ov_circuit(model, layer, head)      # (d_vocab, d_vocab): attended token x logit
    w_qk, w_ov = head_qk(model, layer, head), head_ov(model, layer, head)   # (d_model, d_model)
    d_model, d_head = head_shape(model)      # a head's W_V: what a random baseline must match

From Elhage et al. (2021): a head's attention score between residual vectors x_q and x_k is
x_q W_Q W_K^T x_k^T (biases aside), and what it adds to the logits when it attends to x is
x W_V W_O W_U. With the token embedding on both sides these become d_vocab x d_vocab tables:
the QK circuit W_E W_QK W_E^T, the OV circuit W_E W_OV W_U. For a layer-1 head the key side is
read through the layer-0 heads too (K-composition; see composition.py), so the "prefix matching"
circuit of an induction head is taken on the key side through a layer-0 head's OV:
W_E W_QK (W_E W_OV^(0))^T, which is positive on its diagonal when the head attends to tokens that
followed a copy of the current token. Computed in float64.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.transformers.interface import checked_heads


def _attn(model: nn.Module, layer: int, head: int):
    """The attention module holding (layer, head), once the head is checked to be the model's."""
    checked_heads(model, [(layer, head)])
    return model.blocks[layer].attn


def head_shape(model: nn.Module) -> tuple[int, int]:
    """(d_model, d_head) of the model's heads, from the first head's W_V (sizes the model or its
    cfg may not state: d_head is often left to be d_model / n_heads)."""
    d_model, d_head = _attn(model, 0, 0).W_V[0].shape
    return int(d_model), int(d_head)


def head_qk(model: nn.Module, layer: int, head: int) -> torch.Tensor:
    """(d_model, d_model) W_Q W_K^T of one head."""
    attn = _attn(model, layer, head)
    return attn.W_Q[head].double() @ attn.W_K[head].double().T


def head_ov(model: nn.Module, layer: int, head: int) -> torch.Tensor:
    """(d_model, d_model) W_V W_O of one head (row vector convention: x W_V W_O)."""
    attn = _attn(model, layer, head)
    return attn.W_V[head].double() @ attn.W_O[head].double()


def embedding(model: nn.Module) -> torch.Tensor:
    return model.embed.W_E.detach().double()


@torch.no_grad()
def qk_circuit(model: nn.Module, layer: int, head: int) -> torch.Tensor:
    """(d_vocab, d_vocab) W_E W_QK W_E^T: the score query token i gives key token j."""
    return embedding(model) @ head_qk(model, layer, head) @ embedding(model).T


@torch.no_grad()
def ov_circuit(model: nn.Module, layer: int, head: int) -> torch.Tensor:
    """(d_vocab, d_vocab) W_E W_OV W_U: the logits the head adds for attending to token i."""
    return embedding(model) @ head_ov(model, layer, head) @ model.unembed.W_U.double()


@torch.no_grad()
def prefix_matching_circuit(model: nn.Module, layer: int, head: int, source_head: int) -> torch.Tensor:
    """(d_vocab, d_vocab) W_E W_QK (W_E W_OV^(0, source_head))^T: the score a query token i gives
    a key whose previous token (moved there by layer-0 head source_head) was j."""
    keys = embedding(model) @ head_ov(model, 0, source_head)
    return embedding(model) @ head_qk(model, layer, head) @ keys.T


def diagonal_share(matrix: torch.Tensor) -> float:
    """Fraction of rows whose largest entry is on the diagonal (1.0: token i picks token i)."""
    return float((matrix.argmax(dim=1) == torch.arange(len(matrix))).double().mean())
