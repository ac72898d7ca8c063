"""Bringing your own transformer (mechinterp/transformers/interface.py and model.py): a model shaped
like TransformerLens (sizes on cfg, no heads()) runs through the engine; a model lacking the
interface, a head it does not have, a sequence longer than n_ctx and sizes it cannot be built with
are each one message saying what to do; a TransformerLens attention-only state_dict loads."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mechinterp.transformers.ablation import ablate_heads
from mechinterp.transformers.circuits import ov_circuit
from mechinterp.transformers.composition import all_composition_scores
from mechinterp.transformers.detectors import copying_scores, induction_scores
from mechinterp.transformers.icl import repeated_token_loss
from mechinterp.transformers.interface import DEFAULT_SIZES, ModelInterfaceError, checked_heads
from mechinterp.transformers.model import AttentionOnlyTransformer
from mechinterp.transformers.patching import correct_logit_metric, patch_each_head
from mechinterp.transformers.sequences import repeated_loss_positions, repeated_random_tokens
from mechinterp.transformers.training import SequenceTraining, train_on_sequences

SIZES = dict(d_vocab=24, n_ctx=32, d_model=32, n_heads=2, n_layers=2)
HALF = 12


class TLShaped(AttentionOnlyTransformer):
    """TransformerLens's layout: sizes only on self.cfg, no heads() method."""
    heads = None

    def __init__(self, **sizes):
        super().__init__(**sizes)
        self.cfg = SimpleNamespace(**sizes, d_head=self.d_head)
        for name in ("d_vocab", "n_ctx", "d_model", "n_heads", "n_layers", "d_head"):
            delattr(self, name)


def twin_models():
    """The same weights as an AttentionOnlyTransformer and as a TransformerLens-shaped model."""
    torch.manual_seed(0)
    ours = AttentionOnlyTransformer(**SIZES).eval()
    theirs = TLShaped(**SIZES).eval()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def tokens(batch=8, half=HALF, seed=0):
    return repeated_random_tokens(batch, half, SIZES["d_vocab"], torch.Generator().manual_seed(seed))


def test_a_transformerlens_shaped_model_gives_the_same_measurements():
    ours, theirs = twin_models()
    clean, other = tokens(), tokens(seed=1)
    corrupted = torch.cat([other[:, :HALF], clean[:, HALF:]], dim=1)
    metric = correct_logit_metric(clean, repeated_loss_positions(HALF))
    for measure in (lambda m: induction_scores(m, clean, HALF), copying_scores,
                    lambda m: all_composition_scores(m, "K"),
                    lambda m: patch_each_head(m, clean, corrupted, metric).recovered):
        assert torch.allclose(measure(ours), measure(theirs))
    with ablate_heads(theirs, ["1.0", (1, 1)], "mean", reference=other):
        ablated = repeated_token_loss(theirs, clean, HALF)
    with ablate_heads(ours, [(1, 0), (1, 1)], "mean", reference=other):
        assert ablated == pytest.approx(repeated_token_loss(ours, clean, HALF))
    report = train_on_sequences(theirs, SequenceTraining(steps=2, batch_size=4, snapshot_every=1))
    assert len(report.snapshots) == 3


def test_a_model_without_the_sizes_is_told_which_are_missing_and_how_to_give_them():
    _, theirs = twin_models()
    del theirs.cfg
    with pytest.raises(ModelInterfaceError) as error:
        induction_scores(theirs, tokens(), HALF)
    message = str(error.value)
    assert message.startswith("TLShaped has no n_layers, n_heads, d_vocab, n_ctx")
    assert "cfg" in message and "self.n_layers = ..." in message and "model.py" in message
    _, theirs = twin_models()
    theirs.cfg.n_layers = 0
    with pytest.raises(ModelInterfaceError, match="n_layers is 0.*>= 1"):
        copying_scores(theirs)


@pytest.mark.parametrize("head", ["1.3", (1, 3), (1, -1), (2, 0), "1,0", (1, 0.5), "x"])
def test_a_head_the_model_lacks_is_named_with_the_models_heads_and_the_valid_forms(head):
    ours, theirs = twin_models()
    expected = (f"head {head!r} is not a head of {{}} (2 layers x 2 heads): give each head as (layer, "
                'head) or "layer.head" with layer 0 to 1 and head 0 to 1, e.g. (1, 0) or "1.0"')
    with pytest.raises(ModelInterfaceError) as error, ablate_heads(theirs, [(0, 0), head], "zero"):
        pass
    assert str(error.value) == expected.format("TLShaped")
    with pytest.raises(ModelInterfaceError) as error:
        ov_circuit(ours, *head) if isinstance(head, tuple) else checked_heads(ours, [head])
    assert str(error.value) == expected.format("AttentionOnlyTransformer")


def test_heads_given_as_text_or_pairs_are_the_same_heads():
    ours, _ = twin_models()
    assert checked_heads(ours, ["1.0", (0, 1), [1, 1], (torch.tensor(0), 0)]) == [(1, 0), (0, 1), (1, 1), (0, 0)]


def test_a_sequence_longer_than_n_ctx_or_a_token_outside_the_vocabulary_is_named():
    ours, theirs = twin_models()
    long = tokens(half=20)                        # 40 tokens, n_ctx 32
    for run in (lambda: ours(long), lambda: induction_scores(theirs, long, 20)):
        with pytest.raises(ModelInterfaceError, match="the sequences have 40 tokens, longer than "
                                                      r"\w+'s n_ctx of 32.*half <= 16"):
            run()
    with pytest.raises(ModelInterfaceError, match=r"token id 3\d is outside TLShaped's vocabulary of d_vocab = 24"):
        repeated_token_loss(theirs, tokens() + 12, HALF)


@pytest.mark.parametrize("sizes, words", [
    ({"n_heads": 0}, "n_heads must be a whole number >= 1; it is 0"),
    ({"n_layers": 0}, "n_layers must be a whole number >= 1; it is 0"),
    ({"d_model": 48, "n_heads": 5}, "n_heads must divide d_model (48 / 5 is not whole), or give d_head"),
    ({"n_layer": 2}, "'n_layer' is not an argument of AttentionOnlyTransformer (did you mean n_layers?)"),
])
def test_sizes_the_model_cannot_be_built_with_are_refused_by_name(sizes, words):
    with pytest.raises((ModelInterfaceError, TypeError)) as error:
        AttentionOnlyTransformer(**sizes)
    if "n_layer" not in sizes:                    # a misspelt argument is Python's TypeError here
        assert words in str(error.value)
    AttentionOnlyTransformer(d_model=48, n_heads=5, d_head=8)   # d_head given: any n_heads


def test_the_checked_defaults_are_the_constructors():
    defaults = {name: parameter.default for name, parameter
                in inspect.signature(AttentionOnlyTransformer).parameters.items()}
    assert defaults == DEFAULT_SIZES


def transformerlens_state_dict(n_layers=2, d_model=32, n_heads=2, d_head=16, n_ctx=32, d_vocab=24):
    """The names, shapes and dtypes of HookedTransformer(attn_only=True, normalization_type=None,
    positional_embedding_type="standard").state_dict() in TransformerLens 3.5.1: its attention
    registers `mask` (tril bool, n_ctx x n_ctx) and `IGNORE` (-inf) as persistent buffers."""
    g = torch.Generator().manual_seed(3)
    state = {"embed.W_E": torch.randn(d_vocab, d_model, generator=g),
             "pos_embed.W_pos": torch.randn(n_ctx, d_model, generator=g)}
    for layer in range(n_layers):
        prefix = f"blocks.{layer}.attn."
        for name in ("W_Q", "W_K", "W_V"):
            state[prefix + name] = torch.randn(n_heads, d_model, d_head, generator=g)
        state[prefix + "W_O"] = torch.randn(n_heads, d_head, d_model, generator=g)
        for name in ("b_Q", "b_K", "b_V"):
            state[prefix + name] = torch.randn(n_heads, d_head, generator=g)
        state[prefix + "b_O"] = torch.randn(d_model, generator=g)
        state[prefix + "mask"] = torch.tril(torch.ones(n_ctx, n_ctx)).bool()
        state[prefix + "IGNORE"] = torch.tensor(-torch.inf)
    state["unembed.W_U"] = torch.randn(d_model, d_vocab, generator=g)
    state["unembed.b_U"] = torch.randn(d_vocab, generator=g)
    return state


def test_a_transformerlens_state_dict_loads_its_buffers_dropped(tmp_path):
    from mechinterp.models.checkpoints import load_state_dict
    torch.save(transformerlens_state_dict(), tmp_path / "from_tl.pt")
    state = load_state_dict(tmp_path / "from_tl.pt")
    model = AttentionOnlyTransformer(**SIZES).eval()
    model.load_state_dict(state, strict=True)
    assert "blocks.1.attn.mask" in state                 # the caller's dict is left whole
    weights = {k: v for k, v in state.items() if not k.endswith(("mask", "IGNORE"))}
    assert all(torch.equal(model.state_dict()[name], value) for name, value in weights.items())
    assert model(tokens()).shape == (8, 2 * HALF, 24)


def test_a_transformerlens_local_attention_mask_is_refused_not_dropped():
    state = transformerlens_state_dict()
    state["blocks.0.attn.mask"] = torch.triu(state["blocks.0.attn.mask"], -4)   # window of 5
    with pytest.raises(RuntimeError, match="blocks.0.attn.mask is not a causal mask"):
        AttentionOnlyTransformer(**SIZES).load_state_dict(state)


def test_a_model_lacking_the_hook_points_is_told_their_names():
    class NoHooks(nn.Module):
        n_layers, n_heads, d_vocab = 1, 2, 24

        def forward(self, tokens):
            return torch.zeros(*tokens.shape, 24)
    with pytest.raises(KeyError, match="no layer 'blocks.0.attn.hook_pattern'"):
        induction_scores(NoHooks().eval(), tokens(), HALF)


class RenamedHook(AttentionOnlyTransformer):
    """A speaker's transformer whose pattern hook has a name of its own."""

    def __init__(self, **sizes):
        super().__init__(**sizes)
        for block in self.blocks:
            block.attn.attn_probs = block.attn.hook_pattern
            del block.attn.hook_pattern


def test_a_hook_point_named_otherwise_is_told_what_the_engine_reads_there_and_how_to_add_it():
    model = RenamedHook(**SIZES).eval()
    for read in (lambda: induction_scores(model, tokens(), HALF), lambda: patterns_of(model)):
        with pytest.raises(KeyError) as refused:
            read()
        message = str(refused.value)
        assert message.startswith("RenamedHook has no layer 'blocks.0.attn.hook_pattern', where the transformer "
                                  "engine reads each head's attention pattern, (batch, head, query, key)")
        assert "nn.Identity" in message and message.endswith("(blocks.0.attn has: hook_q, hook_k, hook_v, "
                                                             "hook_attn_scores, hook_z, attn_probs)")


def patterns_of(model):
    from mechinterp.transformers.patterns import attention_patterns
    return attention_patterns(model, tokens())


def test_the_layer_listing_runs_a_transformer_on_tokens():
    """`python -m mechinterp.models.layers` (which a wrong layer name suggests) on a transformer:
    one sequence of n_ctx tokens, not a float image its embedding cannot index with."""
    from mechinterp.models.layers import _header, example_input, layer_table
    for model in (AttentionOnlyTransformer(**SIZES), TLShaped(**SIZES)):
        rows = {row.name: row.shape for row in layer_table(model.eval())}
        assert rows["blocks.1.attn.hook_pattern"] == (2, 32, 32) and rows["blocks.0.attn.hook_z"] == (32, 2, 16)
        assert _header("mine", model, example_input(model)).endswith("output shapes for one sequence of 32 tokens):")
