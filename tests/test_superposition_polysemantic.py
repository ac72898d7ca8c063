"""Polysemantic units: the purity score on hand-made cases, and on a real digits MLP: polysemantic
neurons exist and SAE latents are purer."""
import math

import pytest
import torch

from mechinterp.activations import activation_stream, unit_scores
from mechinterp.data import load_dataset
from mechinterp.models.architectures import MLP
from mechinterp.models.training import TrainingSettings, train_classifier
from mechinterp.superposition.polysemantic import (class_purity, contributions_to_unit,
                                                   features_behind_unit, find_polysemantic, summary)
from mechinterp.superposition.sae import ReluSAE
from mechinterp.superposition.sae_training import train_sae


def test_purity_and_entropy_on_hand_made_scores():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3])
    scores = torch.zeros(8, 3)
    scores[:4, 0] = torch.tensor([4.0, 3.0, 2.0, 1.0])     # unit 0: its top 4 are all class 0
    scores[[0, 4, 6, 7], 1] = 1.0                          # unit 1: one each of classes 0..3
    report = class_purity(scores, labels, k=4, n_classes=4)   # unit 2 never fires
    assert report.purity[:2].tolist() == [1.0, 0.25]
    assert report.entropy[0] == 0 and report.entropy[1] == pytest.approx(1.0)
    assert report.top_indices[0].tolist() == [0, 1, 2, 3]
    assert report.alive.tolist() == [True, True, False]
    assert find_polysemantic(report, max_purity=0.5) == [1]
    assert summary(report)["live_units"] == 2


def test_entropy_of_a_two_class_split_is_log2_over_log_classes():
    labels = torch.tensor([0, 1, 0, 1])
    report = class_purity(torch.ones(4, 1) + torch.arange(4.0)[:, None], labels, k=4, n_classes=8)
    assert float(report.entropy[0]) == pytest.approx(math.log(2) / math.log(8))


@pytest.fixture(scope="module")
def digits_mlp():
    train = load_dataset("digits", "train")
    torch.manual_seed(0)
    model = MLP(hidden=32, classes=10, input_shape=(1, 8, 8))
    train_classifier(model, train, TrainingSettings(epochs=20, batch_size=32, learning_rate=3e-3),
                     torch.device("cpu"))
    return model, train


def test_digits_mlp_has_polysemantic_neurons_and_sae_latents_are_purer(digits_mlp):
    model, train = digits_mlp
    neurons = class_purity(unit_scores(model, "relu1", train.images), train.labels, k=20)
    print("polysemantic neurons:", find_polysemantic(neurons, max_purity=0.5))
    assert len(find_polysemantic(neurons, max_purity=0.5)) >= 2
    sae = ReluSAE(32, 128, l1_coefficient=0.3)
    train_sae(sae, activation_stream(model, "relu1", train.images, images_per_batch=128),
              steps=1500, lr=3e-3, resample_every=250)
    latents = class_purity(unit_scores(model, "relu1", train.images, vector_map=sae.encode),
                           train.labels, k=20)
    print("mean purity, neurons:", summary(neurons), "SAE latents:", summary(latents))
    assert summary(latents)["live_units"] >= 20
    assert summary(latents)["mean_purity"] > summary(neurons)["mean_purity"] + 0.1


def test_contributions_pick_the_latents_that_write_onto_the_unit():
    latents = torch.tensor([[1.0, 0.0, 2.0, 0.5], [1.0, 0.0, 0.0, 0.5]])   # two inputs, 4 latents
    decoder = torch.tensor([[0.5, 0.0], [3.0, 1.0], [0.25, 0.0], [-1.0, 1.0]])   # 4 latents, 2 units
    contributions = contributions_to_unit(latents, decoder, unit=0, scale=2.0)
    torch.testing.assert_close(contributions, torch.tensor([2.0, 0.0, 1.0, -2.0]))
    report = class_purity(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]]),
                          torch.tensor([3, 3]), k=2, n_classes=4)
    # latents 0 and 2 share majority class 3: only the stronger is kept; negative ones never
    assert features_behind_unit(contributions, report, count=3) == [0]
