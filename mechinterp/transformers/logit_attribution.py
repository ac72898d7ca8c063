"""Direct logit attribution: how much each head's output adds to the correct next token's logit.

    dla = head_logit_attribution(model, tokens, positions=slice(16, 31))   # (layer, head)

With no layer norm the logits are exactly the sum of the embeddings' direct path, each head's
output (z_h W_O[h]) and the biases, all times W_U; a head's direct attribution is its output's
dot product with the correct token's column of W_U, less that output's mean over the vocabulary
(a logit shift shared by every token changes no probability). Read through hook_z.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.transformers.patterns import per_layer


def z_hook(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_z"


@torch.no_grad()
def head_outputs(model: nn.Module, tokens: torch.Tensor) -> dict[int, torch.Tensor]:
    """{layer: (batch, pos, head, d_model)} what each head writes into the residual stream."""
    z = per_layer(model, tokens, z_hook)
    return {layer: torch.einsum("bphd,hdm->bphm", z[layer], model.blocks[layer].attn.W_O)
            for layer in z}


@torch.no_grad()
def head_logit_attribution(model: nn.Module, tokens: torch.Tensor,
                           positions: slice = slice(None)) -> torch.Tensor:
    """(layer, head) mean direct contribution to the next token's (vocabulary-centred) logit."""
    unembed = model.unembed.W_U - model.unembed.W_U.mean(dim=1, keepdim=True)
    targets = unembed.T[tokens[:, 1:]]                             # (batch, pos - 1, d_model)
    rows = []
    for layer, outputs in head_outputs(model, tokens).items():
        contribution = torch.einsum("bphm,bpm->bph", outputs[:, :-1], targets)
        rows.append(contribution[:, positions].mean(dim=(0, 1)))
    return torch.stack(rows)
