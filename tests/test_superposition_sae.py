"""Sparse autoencoders: recovery of a known sparse dictionary, metrics equal to their definitions,
the SAE spliced into a real model, and dead-latent handling."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.superposition.sae import ReluSAE, TopKSAE
from mechinterp.superposition.sae_metrics import (accuracy_with_sae, dead_fraction,
                                                  dictionary_recovery, evaluate_sae,
                                                  explained_variance, l0, reconstruction_mse)
from mechinterp.superposition.sae_training import resample_dead_latents, train_sae, train_step
from mechinterp.superposition.synthetic import SparseDictionary


def known_dictionary():
    """48 directions in 16 dimensions (3x overcomplete), each active 4% of the time."""
    return SparseDictionary(n_features=48, d=16, feature_probability=0.04, seed=0)


@pytest.mark.parametrize("sae", [
    TopKSAE(16, 96, k=3, dead_after=20_000),
    ReluSAE(16, 96, l1_coefficient=0.5, decoder="unit"),
    ReluSAE(16, 96, l1_coefficient=0.5, decoder="weighted"),
], ids=["topk", "relu-unit-decoder", "relu-weighted-penalty"])
def test_sae_recovers_a_known_sparse_dictionary(sae):
    data = known_dictionary()
    train_sae(sae, data.stream(512), steps=800, lr=5e-3, resample_every=200)
    cosines = dictionary_recovery(data.directions, sae.W_dec.detach())
    assert cosines.min() > 0.95 and cosines.mean() > 0.98
    metrics = evaluate_sae(sae, data.sample(4096))
    assert metrics["explained_variance"] > 0.7 and metrics["l0"] < 6


def test_dictionary_recovery_is_the_best_signed_cosine():
    true = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    learned = torch.tensor([[3.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    # float64 formula: cos = t . l / (|t| |l|), best over the learned rows
    t, l = true.double().numpy(), learned.double().numpy()
    cosines = (t @ l.T) / (np.linalg.norm(t, axis=1)[:, None] * np.linalg.norm(l, axis=1)[None])
    recovery = dictionary_recovery(true, learned)
    assert recovery.numpy() == pytest.approx(cosines.max(axis=1), abs=1e-6)
    assert recovery[0] == pytest.approx(1.0)
    assert recovery[1] == pytest.approx(1 / np.sqrt(2), abs=1e-6)   # -e2 does not recover e2
    assert dictionary_recovery(true[1:2], -true[1:2])[0] == pytest.approx(-1.0)


def test_metrics_equal_their_definitions_on_hand_made_cases():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]])
    mean = x.mean(0)
    assert reconstruction_mse(x, x) == 0 and explained_variance(x, x) == 1
    assert explained_variance(x, mean.expand_as(x)) == pytest.approx(0.0, abs=1e-7)
    halfway = mean + 0.5 * (x - mean)                 # residual is half the deviation: 1 - 1/4
    assert explained_variance(x, halfway) == pytest.approx(0.75)
    assert reconstruction_mse(x, torch.zeros_like(x)) == pytest.approx((1 + 4 + 9 + 16 + 25) / 6)
    latents = torch.tensor([[0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 3.0], [0.0, 1.0, 0.0, 0.5]])
    assert l0(latents) == pytest.approx(5 / 3)
    assert dead_fraction(latents) == pytest.approx(0.5)


def test_topk_keeps_exactly_k_latents_and_decoder_rows_stay_unit_norm():
    sae = TopKSAE(16, 64, k=5)
    data = known_dictionary()
    train_sae(sae, data.stream(256), steps=20)
    latents = sae.encode(data.sample(100) + 1.0)      # shifted so every pre-activation is positive
    assert ((latents > 0).sum(-1) == 5).all()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(64))


def test_weighted_penalty_is_l1_of_latents_times_decoder_norms():
    sae = ReluSAE(4, 6, l1_coefficient=0.1, decoder="weighted")
    with torch.no_grad():
        sae.W_dec.mul_(torch.arange(1.0, 7.0)[:, None])
    x = torch.rand(10, 4)
    losses = sae.losses(x)
    _, latents = sae(x)
    expected = (latents * sae.W_dec.norm(dim=1)).sum(-1).mean()
    torch.testing.assert_close(losses["penalty"], expected)
    torch.testing.assert_close(losses["loss"], losses["scaled_error"] + 0.1 * expected)


def identity_sae(d: int) -> TopKSAE:
    """An SAE whose latents are the coordinates of x: exact on non-negative inputs."""
    sae = TopKSAE(d, d, k=d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
    return sae


def tiny_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def test_spliced_accuracy_equals_a_hand_written_forward_pass():
    model = tiny_mlp()
    images, labels = torch.randn(50, 6), torch.randint(0, 3, (50,))
    clean, spliced = accuracy_with_sae(model, "1", identity_sae(8), images, labels)
    assert spliced == clean == int((model(images).argmax(-1) == labels).sum()) / 50

    lossy = TopKSAE(8, 8, k=2)                         # keeps only 2 of 8 hidden units' worth
    with torch.no_grad():
        lossy.W_enc.copy_(torch.eye(8))
        lossy.W_dec.copy_(torch.eye(8))
        hidden = model[1](model[0](images))
        by_hand = model[2](lossy(hidden)[0]).argmax(-1)
    _, spliced = accuracy_with_sae(model, "1", lossy, images, labels)
    assert spliced == int((by_hand == labels).sum()) / 50


def test_relu_sae_resamples_dead_latents_towards_badly_reconstructed_inputs():
    data = known_dictionary()
    sae = ReluSAE(16, 32, l1_coefficient=0.5)
    with torch.no_grad():
        sae.b_enc[:16] = -100.0                       # half the latents can never fire
    log = train_sae(sae, data.stream(256), steps=100, resample_every=50, dead_after=1000)
    assert log.resampled >= 16
    assert bool((sae.b_enc[:16] > -100).all())        # their bias was reset
    latents = sae.encode(data.sample(4096))
    assert (latents[:, :16] > 0).any(dim=0).sum() >= 8   # and most of them fire again


def test_resampling_leaves_live_latents_alone():
    data = known_dictionary()
    sae = ReluSAE(16, 32)
    optimizer = torch.optim.Adam(sae.parameters())
    train_step(sae, optimizer, data.sample(256))
    before = sae.W_dec.detach().clone()
    assert resample_dead_latents(sae, optimizer, data.sample(256), dead_after=10**9) == 0
    assert torch.equal(before, sae.W_dec)


def test_topk_auxiliary_loss_trains_dead_latents():
    data = known_dictionary()
    sae = TopKSAE(16, 32, k=2, dead_after=1)
    x = data.sample(256)
    sae.set_input_scale(x)
    sae.vectors_since_active[:16] = 10                # mark half as dead
    losses = sae.losses(x)
    assert losses["aux"] > 0
    losses["aux"].backward()
    dead_gradient = sae.W_enc.grad[:, :16].abs().sum()
    live_gradient = sae.W_enc.grad[:, 16:].abs().sum()
    assert dead_gradient > 0 and live_gradient == 0


def test_row_batches_draw_rows_of_the_matrix_uniformly_and_repeatably():
    from mechinterp.superposition.sae_training import row_batches
    vectors = torch.arange(40, dtype=torch.float32).reshape(20, 2)
    stream = row_batches(vectors, 50, seed=3)
    drawn = torch.cat([next(stream) for _ in range(40)])          # 2,000 rows
    assert drawn.shape == (2000, 2) and bool((drawn[:, 1] == drawn[:, 0] + 1).all())   # whole rows
    counts = torch.bincount((drawn[:, 0] / 2).long(), minlength=20).float()
    assert float(counts.min()) > 60 and float(counts.max()) < 140   # 100 expected per row
    again = row_batches(vectors, 50, seed=3)
    assert torch.equal(next(again), drawn[:50])


def test_vectors_of_another_width_are_one_message_naming_the_width_to_build():
    """A speaker's TopKSAE(d_in=7) on a 16-channel layer was a bare matrix-size error from torch."""
    from mechinterp.superposition.sae import TopKSAE
    from mechinterp.superposition.sae_training import row_batches, train_sae
    sae = TopKSAE(d_in=7, n_latents=32, k=4)
    vectors = torch.rand(64, 16)
    for call in (lambda: train_sae(sae, row_batches(vectors, 16), steps=2), lambda: sae(vectors)):
        with pytest.raises(ValueError, match=r"the vectors have 16 dimensions but this TopKSAE was built with "
                                             r"d_in=7: build it with d_in=16"):
            call()
    assert TopKSAE(d_in=16, n_latents=32, k=4)(vectors)[0].shape == (64, 16)
