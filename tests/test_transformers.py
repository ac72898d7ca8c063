"""The transformer engine (mechinterp/transformers/) on hand-built weights with known answers.

The hand-built 2-layer model has a residual stream of three one-hot blocks: the current token,
the previous token (written by the layer-0 head) and the position. Its layer-0 head attends to the
previous position and copies that token into the previous-token block; its layer-1 head matches
the current token against the previous-token block (prefix matching) and copies the attended token
into the logits. So every detector's answer is known: previous-token head 0.0, induction head 1.0,
copying OV. Composition scores are checked against the formula in float64 with numpy, patching
against the exact linear decomposition of a 1-layer model.
"""
import math

import numpy as np
import pytest
import torch

from mechinterp.hooks import capture
from mechinterp.transformers.ablation import ablate_heads
from mechinterp.transformers.circuits import diagonal_share, ov_circuit, prefix_matching_circuit, qk_circuit
from mechinterp.transformers.composition import (all_composition_scores, composition_score,
                                                 random_composition_baseline)
from mechinterp.transformers.detectors import (copying_scores, duplicate_token_scores, induction_scores,
                                               positive_eigenvalue_share, previous_token_scores)
from mechinterp.transformers.icl import icl_positions, icl_score, position_losses, repeated_token_loss
from mechinterp.transformers.logit_attribution import head_logit_attribution
from mechinterp.transformers.model import AttentionOnlyTransformer
from mechinterp.transformers.patching import correct_logit_metric, patch_each_head
from mechinterp.transformers.sequences import (repeated_loss_positions, repeated_random_tokens,
                                               repeated_segments)
from mechinterp.transformers.snapshots import read_snapshots, save_snapshots
from mechinterp.transformers.training import SequenceTraining, train_on_sequences

VOCAB = CTX = 16
HALF = 8
SHARP = 400.0       # query scale: softmax is then one-hot to within exp(-SHARP / sqrt(d_head))


def blocks(model):
    """Slices of the residual stream: current token, previous token, position."""
    return slice(0, VOCAB), slice(VOCAB, 2 * VOCAB), slice(2 * VOCAB, 2 * VOCAB + CTX)


def attend_to_previous_position(attn, head):
    _, _, pos = blocks(None)
    for p in range(CTX):
        attn.W_Q.data[head, pos.start + p, p] = SHARP
        if p + 1 < CTX:
            attn.W_K.data[head, pos.start + p, p + 1] = 1.0


@torch.no_grad()
def hand_built_induction_model() -> AttentionOnlyTransformer:
    """Layer 0 head 0: previous-token head; layer 1 head 0: induction head (see the docstring)."""
    model = AttentionOnlyTransformer(VOCAB, CTX, 2 * VOCAB + CTX, n_heads=1, n_layers=2, d_head=VOCAB)
    for parameter in model.parameters():
        parameter.zero_()
    token, previous, pos = blocks(model)
    eye = torch.eye(VOCAB)
    model.embed.W_E[:, token] = eye
    model.pos_embed.W_pos[:, pos] = torch.eye(CTX)
    first, second = model.blocks[0].attn, model.blocks[1].attn
    attend_to_previous_position(first, 0)
    first.W_V[0, token] = eye
    first.W_O[0][:, previous] = eye
    second.W_Q[0, token] = SHARP * eye
    second.W_K[0, previous] = eye
    second.W_V[0, token] = eye
    second.W_O[0][:, token] = 10 * eye
    model.unembed.W_U[token] = eye
    return model.eval()


def permutation_tokens(batch, seed=0):
    """[r, r] with r HALF distinct tokens, so each token's earlier copy is unique."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.stack([torch.randperm(VOCAB, generator=generator)[:HALF] for _ in range(batch)])
    return torch.cat([first, first], dim=1)


def test_model_has_transformerlens_hook_points_that_the_engine_hooks_read():
    model = AttentionOnlyTransformer(d_vocab=12, n_ctx=10, d_model=16, n_heads=2, n_layers=2).eval()
    names = ["hook_embed", "hook_pos_embed", "blocks.1.hook_resid_pre", "blocks.1.attn.hook_q",
             "blocks.1.attn.hook_k", "blocks.1.attn.hook_v", "blocks.1.attn.hook_attn_scores",
             "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z", "blocks.1.hook_attn_out",
             "blocks.1.hook_resid_post"]
    tokens = torch.randint(0, 12, (3, 10))
    with capture(model, names) as acts:
        logits = model(tokens)
    assert logits.shape == (3, 10, 12)
    assert acts["blocks.1.attn.hook_pattern"].shape == (3, 2, 10, 10)
    assert acts["blocks.1.attn.hook_z"].shape == (3, 10, 2, 8)
    assert torch.allclose(acts["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(3, 2, 10))
    assert torch.all(acts["blocks.1.attn.hook_pattern"].triu(1) == 0)          # causal
    resid = acts["blocks.1.hook_resid_pre"] + acts["blocks.1.hook_attn_out"]
    assert torch.allclose(resid, acts["blocks.1.hook_resid_post"])
    assert torch.allclose(acts["blocks.1.hook_resid_post"] @ model.unembed.W_U + model.unembed.b_U, logits)


def test_repeated_sequences_repeat():
    tokens = repeated_segments(50, 48, 64, torch.Generator().manual_seed(0))
    periods = [next(p for p in range(6, 20) if torch.equal(row[p:], row[:-p])) for row in tokens]
    assert min(periods) >= 6 and max(periods) <= 19 and len(set(periods)) > 5
    pairs = repeated_random_tokens(4, 7, 64, torch.Generator().manual_seed(0))
    assert torch.equal(pairs[:, :7], pairs[:, 7:])
    assert repeated_loss_positions(7) == slice(7, 13)


def test_detectors_find_the_hand_built_previous_token_and_induction_heads():
    model, tokens = hand_built_induction_model(), permutation_tokens(32)
    previous, induction = previous_token_scores(model, tokens), induction_scores(model, tokens, HALF)
    assert previous[0, 0] > 0.999 and previous[1, 0] < 0.2
    # 7 of the 8 second-half queries attend only to the token after their first copy; the first
    # (token r0) also matches position 0, which, having no previous token, holds r0 itself: 1/2
    assert float(induction[1, 0]) == pytest.approx(7.5 / 8, abs=1e-4) and induction[0, 0] < 0.2
    assert float(duplicate_token_scores(model, tokens, HALF)[1, 0]) == pytest.approx(0.5 / 8, abs=1e-4)


def test_a_head_that_matches_its_own_token_splits_between_the_copy_and_itself():
    model = hand_built_induction_model()
    with torch.no_grad():
        model.blocks[1].attn.W_K.data[0] = 0
        model.blocks[1].attn.W_K.data[0, :VOCAB] = torch.eye(VOCAB)   # key: the current token
    scores = duplicate_token_scores(model, permutation_tokens(16), HALF)
    assert abs(float(scores[1, 0]) - 0.5) < 1e-3                      # earlier copy and itself


def test_copying_score_is_the_positive_share_of_the_ov_eigenvalues():
    assert positive_eigenvalue_share(torch.diag(torch.tensor([1.0, -1.0, 2.0]))) == pytest.approx(0.75)
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]])                 # eigenvalues +-i: no copying
    assert positive_eigenvalue_share(rotation) == pytest.approx(0.0, abs=1e-12)
    model = hand_built_induction_model()
    assert copying_scores(model)[1, 0] == pytest.approx(1.0)           # OV circuit = 10 I
    assert torch.allclose(ov_circuit(model, 1, 0), 10 * torch.eye(VOCAB, dtype=torch.float64))
    with torch.no_grad():
        model.blocks[1].attn.W_O.data *= -1
    assert copying_scores(model)[1, 0] == pytest.approx(0.0)


def test_prefix_matching_circuit_of_the_hand_built_induction_head_is_the_identity():
    model = hand_built_induction_model()
    circuit = prefix_matching_circuit(model, 1, 0, 0)
    assert torch.allclose(circuit, SHARP * torch.eye(VOCAB, dtype=torch.float64))
    assert diagonal_share(circuit) == 1.0
    assert torch.all(qk_circuit(model, 1, 0) == 0)      # its keys read no current token


def numpy_composition(model, left_layer, left_head, right_layer, right_head, mode):
    """The composition score from the definition, in float64 numpy."""
    def weights(layer, name):
        return getattr(model.blocks[layer].attn, name).detach().double().numpy()
    ov = weights(left_layer, "W_V")[left_head] @ weights(left_layer, "W_O")[left_head]
    qk = weights(right_layer, "W_Q")[right_head] @ weights(right_layer, "W_K")[right_head].T
    right = {"Q": qk, "K": qk.T,
             "V": weights(right_layer, "W_V")[right_head] @ weights(right_layer, "W_O")[right_head]}[mode]
    return np.linalg.norm(ov @ right) / (np.linalg.norm(ov) * np.linalg.norm(right))


def test_composition_scores_match_the_formula_in_float64():
    torch.manual_seed(0)
    model = AttentionOnlyTransformer(d_vocab=10, n_ctx=8, d_model=24, n_heads=3, n_layers=3)
    for mode in ("Q", "K", "V"):
        scores = all_composition_scores(model, mode)
        assert scores.dtype == torch.float64 and scores.shape == (3, 3, 3, 3)
        for (l1, h1) in model.heads():
            for (l2, h2) in model.heads():
                expected = numpy_composition(model, l1, h1, l2, h2, mode) if l2 > l1 else 0.0
                assert float(scores[l1, h1, l2, h2]) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_k_composition_of_the_induction_circuit_stands_out_from_random_matrices():
    model = hand_built_induction_model()
    baseline = random_composition_baseline(model.d_model, model.d_head, 200)
    k_score = float(all_composition_scores(model, "K")[0, 0, 1, 0])
    assert k_score > baseline.mean() + 5 * baseline.std()
    assert float(all_composition_scores(model, "Q")[0, 0, 1, 0]) == 0.0   # Q reads no previous block
    assert composition_score(torch.eye(4), torch.eye(4)) == pytest.approx(0.5)   # 2 / (2 * 2)


def test_in_context_learning_score_and_repeated_loss_of_the_induction_model():
    model, tokens = hand_built_induction_model(), permutation_tokens(32)
    losses = position_losses(model, tokens)
    # every repeated token after the first is certain (a 10-logit margin); the first query splits
    # its attention between position 0 and 1 (see above), so its loss is not small
    assert losses[:, HALF + 1:2 * HALF - 1].max() < 1e-3 and losses[:, HALF].min() > 0.5
    assert repeated_token_loss(model, tokens, HALF) == pytest.approx(float(losses[:, HALF:2 * HALF - 1].mean()))
    assert icl_score(model, tokens, early=2, late=12) < -1.0          # first half: no context help
    with pytest.raises(ValueError, match="early < late"):
        icl_score(model, tokens, early=12, late=2)


@pytest.mark.parametrize("length, positions", [(48, (4, 40)), (512, (42, 428)), (12, (1, 10)), (7, (0, 5)),
                                               (3, (0, 1))])
def test_icl_positions_scale_with_the_context_and_fit_any_model_of_three_tokens_or_more(length, positions):
    """The phase-change figure used 4 and n_ctx - 8, which fails below 13 tokens (a speaker's small
    model); 48 tokens keep 4 and 40, and every position has a next token to predict."""
    early, late = icl_positions(length)
    assert (early, late) == positions and 0 <= early < late <= length - 2
    model = AttentionOnlyTransformer(d_vocab=5, n_ctx=length, d_model=8, n_heads=1, n_layers=1).eval()
    assert math.isfinite(icl_score(model, torch.randint(0, 5, (2, length)), early, late))
    with pytest.raises(ValueError, match="2 tokens are too few, it needs 3 or more"):
        icl_positions(2)


def test_zero_ablation_is_the_head_with_its_output_weights_zeroed():
    torch.manual_seed(1)
    model = AttentionOnlyTransformer(d_vocab=12, n_ctx=10, d_model=16, n_heads=2, n_layers=2).eval()
    tokens = torch.randint(0, 12, (4, 10))
    with torch.no_grad(), ablate_heads(model, [(0, 1)], "zero"):
        ablated = model(tokens)
    with torch.no_grad():
        model.blocks[0].attn.W_O.data[1] = 0
        assert torch.allclose(ablated, model(tokens), atol=1e-6)


def test_mean_and_resample_ablation_take_the_reference_values():
    model, tokens = hand_built_induction_model(), permutation_tokens(8)
    same = tokens[:1].expand(8, -1)
    with torch.no_grad():
        clean = model(same)
        with ablate_heads(model, [(1, 0)], "mean", reference=same):   # mean of identical runs
            assert torch.allclose(model(same), clean, atol=1e-5)
        with ablate_heads(model, [(1, 0)], "zero"):
            assert repeated_token_loss(model, tokens, HALF) > 1.0    # induction gone
        with ablate_heads(model, [(1, 0)], "resample", reference=tokens):
            assert repeated_token_loss(model, tokens, HALF) > 1.0    # other sequences' answers
    with pytest.raises(ValueError, match="reference"):
        with ablate_heads(model, [(1, 0)], "mean"):
            pass
    with pytest.raises(ValueError, match="as many sequences"), torch.no_grad():
        with ablate_heads(model, [(1, 0)], "resample", reference=tokens[:3]):
            model(tokens)


def test_patching_the_induction_head_restores_the_clean_answer_exactly():
    model, clean = hand_built_induction_model(), permutation_tokens(16)
    corrupted = clean.clone()
    corrupted[:, :HALF] = permutation_tokens(16, seed=1)[:, :HALF]
    result = patch_each_head(model, clean, corrupted, correct_logit_metric(clean, repeated_loss_positions(HALF)))
    assert result.clean > result.corrupted + 5
    # the logits read only the current-token block: direct path (same tokens) + the layer-1 head
    assert float(result.recovered[1, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(result.recovered[0, 0]) < 0.5


def test_patching_one_layer_equals_the_difference_of_direct_logit_attributions():
    torch.manual_seed(2)
    model = AttentionOnlyTransformer(d_vocab=20, n_ctx=16, d_model=32, n_heads=4, n_layers=1).eval()
    clean = repeated_random_tokens(8, 8, 20, torch.Generator().manual_seed(0))
    corrupted = clean.clone()
    corrupted[:, :8] = torch.randint(0, 20, (8, 8), generator=torch.Generator().manual_seed(1))
    positions = repeated_loss_positions(8)
    result = patch_each_head(model, clean, corrupted, correct_logit_metric(clean, positions))
    difference = (head_logit_attribution(model, clean, positions)
                  - head_logit_attribution(model, corrupted, positions))
    assert torch.allclose(result.patched[0] - result.corrupted, difference[0].double(), atol=1e-5)


def test_training_keeps_snapshots_that_load_back(tmp_path):
    torch.manual_seed(0)
    model = AttentionOnlyTransformer(d_vocab=16, n_ctx=12, d_model=16, n_heads=2, n_layers=1)
    report = train_on_sequences(model, SequenceTraining(steps=20, batch_size=8, snapshot_every=10,
                                                        segment_lengths=(3, 5)))
    assert [step for step, _ in report.snapshots] == [0, 10, 20]
    assert report.final_loss < math.log(16) + 0.5
    loaded = read_snapshots(save_snapshots(tmp_path / "s.safetensors", report.snapshots))
    assert [step for step, _ in loaded] == [0, 10, 20]
    assert torch.equal(loaded[-1][1]["blocks.0.attn.W_Q"], model.blocks[0].attn.W_Q.detach())
    assert not torch.equal(loaded[0][1]["blocks.0.attn.W_Q"], loaded[-1][1]["blocks.0.attn.W_Q"])


def test_snapshot_curve_finds_the_step_where_the_induction_head_appears():
    from mechinterp.transformers.phase_change import phase_change_step, snapshot_curve, value_near
    induction, tokens = hand_built_induction_model(), permutation_tokens(16)
    untrained = AttentionOnlyTransformer(VOCAB, CTX, 2 * VOCAB + CTX, n_heads=1, n_layers=2, d_head=VOCAB).eval()
    # the head appears between snapshots 200 and 300
    curve = snapshot_curve([(0, untrained), (100, untrained), (200, untrained), (300, induction), (400, induction)],
                           tokens, HALF)
    steps, losses, scores = zip(*curve)
    assert steps == (0, 100, 200, 300, 400)
    assert scores[3] > 0.9 and max(scores[:3]) < 0.3                   # the hand-built head attends to the copy
    assert losses[3] < 0.5 * losses[0]                                # and predicts the repeated tokens
    assert phase_change_step(curve) == 300
    assert value_near(curve, 260) == losses[3] and value_near(curve, 240) == losses[2]
