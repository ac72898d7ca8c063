"""A small attention-only transformer in plain PyTorch, with TransformerLens's names.

    model = AttentionOnlyTransformer(d_vocab=64, n_ctx=48, d_model=64, n_heads=4, n_layers=2)
    logits = model(tokens)                                   # (batch, pos, d_vocab)
    with capture(model, ["blocks.1.attn.hook_pattern"]) as acts:   # mechinterp.hooks
        model(tokens)
    acts["blocks.1.attn.hook_pattern"]                       # (batch, head, query, key)

Parameters and hook points are named as in TransformerLens (embed.W_E, pos_embed.W_pos,
blocks.{l}.attn.W_Q/W_K/W_V/W_O and b_*, unembed.W_U/b_U; hook_embed, hook_pos_embed,
blocks.{l}.hook_resid_pre, blocks.{l}.attn.hook_q/k/v/attn_scores/pattern/z,
blocks.{l}.hook_attn_out, blocks.{l}.hook_resid_post), so weights move between the two and a
reader can follow either: a TransformerLens attention-only state_dict (attn_only=True,
normalization_type=None) loads here, its blocks.{l}.attn.mask and IGNORE buffers dropped. Every
hook point is an identity module: the engine's context-managed hooks (capture, intervene) read and
change them. There is no layer norm and no MLP: the residual stream is a sum of the embeddings and
the heads' outputs, which is what makes the circuit algebra of circuits.py and composition.py exact.

Bringing your own transformer: the engine (detectors, patterns, circuits, composition, ablation,
patching, logit attribution, training) needs of a model only
  - sizes n_layers, n_heads, d_vocab (and n_ctx to train or to check sequence lengths), as whole
    numbers on the model or on model.cfg, as TransformerLens keeps them;
  - forward(tokens) -> logits, tokens (batch, pos) long, logits (batch, pos, d_vocab);
  - modules blocks.{l}.attn.hook_pattern (batch, head, query, key) and blocks.{l}.attn.hook_z
    (batch, pos, head, d_head), whose outputs are read and replaced (any identity module will do);
  - for circuits, composition and logit attribution, parameters embed.W_E (d_vocab, d_model),
    blocks.{l}.attn.W_Q/W_K/W_V (head, d_model, d_head) and W_O (head, d_head, d_model),
    unembed.W_U (d_model, d_vocab).
interface.py reads the sizes and says which are missing; heads are given as (layer, head) or
"layer.head" and checked there too. A heads() method is not needed (interface.all_heads).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from mechinterp.transformers.interface import (ModelInterfaceError, all_heads, check_length,
                                               size_problems)


class HookPoint(nn.Identity):
    """A named place in the forward pass where hooks read or replace the activation."""


def _weight(*shape: int, std: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * std)


class Embed(nn.Module):
    def __init__(self, d_vocab: int, d_model: int):
        super().__init__()
        self.W_E = _weight(d_vocab, d_model, std=1 / math.sqrt(d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    def __init__(self, n_ctx: int, d_model: int):
        super().__init__()
        self.W_pos = _weight(n_ctx, d_model, std=1 / math.sqrt(d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)


class Attention(nn.Module):
    """Causal multi-head attention; q, k, v, z are (batch, pos, head, d_head)."""

    def __init__(self, d_model: int, n_heads: int, d_head: int, n_ctx: int):
        super().__init__()
        std = 1 / math.sqrt(d_model)
        for name in ("W_Q", "W_K", "W_V"):
            setattr(self, name, _weight(n_heads, d_model, d_head, std=std))
        self.W_O = _weight(n_heads, d_head, d_model, std=1 / math.sqrt(n_heads * d_head))
        for name in ("b_Q", "b_K", "b_V"):
            setattr(self, name, nn.Parameter(torch.zeros(n_heads, d_head)))
        self.b_O = nn.Parameter(torch.zeros(d_model))
        self.register_buffer("mask", torch.ones(n_ctx, n_ctx).tril().bool(), persistent=False)
        for name in ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z"):
            setattr(self, name, HookPoint())

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        """Drop TransformerLens's persistent mask and IGNORE buffers: ours are rebuilt, not stored.
        A mask that is not causal (TransformerLens's local attention) is refused, not dropped."""
        mask, _ = state_dict.pop(prefix + "mask", None), state_dict.pop(prefix + "IGNORE", None)
        error_msgs = args[-1]
        if mask is not None and not torch.equal(mask.bool(), torch.ones_like(mask, dtype=torch.bool).tril()):
            error_msgs.append(f"{prefix}mask is not a causal mask (TransformerLens local attention?): "
                              "AttentionOnlyTransformer attends to every earlier position")
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        q = self.hook_q(torch.einsum("bpm,hmd->bphd", resid, self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpm,hmd->bphd", resid, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpm,hmd->bphd", resid, self.W_V) + self.b_V)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        positions = resid.shape[1]
        scores = scores.masked_fill(~self.mask[:positions, :positions], float("-inf"))
        pattern = self.hook_pattern(torch.softmax(self.hook_attn_scores(scores), dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        return torch.einsum("bqhd,hdm->bqm", z, self.W_O) + self.b_O


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_head: int, n_ctx: int):
        super().__init__()
        self.hook_resid_pre = HookPoint()
        self.attn = Attention(d_model, n_heads, d_head, n_ctx)
        self.hook_attn_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)
        return self.hook_resid_post(resid + self.hook_attn_out(self.attn(resid)))


class Unembed(nn.Module):
    def __init__(self, d_model: int, d_vocab: int):
        super().__init__()
        self.W_U = _weight(d_model, d_vocab, std=1 / math.sqrt(d_model))
        self.b_U = nn.Parameter(torch.zeros(d_vocab))

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        return resid @ self.W_U + self.b_U


class AttentionOnlyTransformer(nn.Module):
    """Token and position embeddings, n_layers of attention heads, an unembedding."""

    def __init__(self, d_vocab: int = 64, n_ctx: int = 48, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2, d_head: int | None = None):
        super().__init__()
        problems = size_problems(dict(d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_heads=n_heads,
                                      n_layers=n_layers, d_head=d_head))
        if problems:
            raise ModelInterfaceError(f"AttentionOnlyTransformer: {'; '.join(problems)}")
        self.d_vocab, self.n_ctx, self.d_model = d_vocab, n_ctx, d_model
        self.n_heads, self.n_layers = n_heads, n_layers
        self.d_head = d_head or d_model // n_heads
        self.embed, self.hook_embed = Embed(d_vocab, d_model), HookPoint()
        self.pos_embed, self.hook_pos_embed = PosEmbed(n_ctx, d_model), HookPoint()
        self.blocks = nn.ModuleList(Block(d_model, n_heads, self.d_head, n_ctx)
                                    for _ in range(n_layers))
        self.unembed = Unembed(d_model, d_vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_length(self, tokens.shape[1])
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            resid = block(resid)
        return self.unembed(resid)

    def heads(self) -> list[tuple[int, int]]:
        """Every (layer, head), layer by layer."""
        return all_heads(self)
