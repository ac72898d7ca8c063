"""FGSM and PGD on a real (small) digits classifier; the activation change read through an SAE."""
import numpy as np
import pytest
import torch

from mechinterp.adversarial import (
    adversarial_path, attack_success_rate, feature_preferred_class, fgsm, hijacked_features, pgd,
    success_vs_epsilon)


@pytest.fixture(scope="module")
def digits_model(train_digits_mlp):
    model, _, _, images, labels = train_digits_mlp(hidden=32, steps=80, lr=0.02)
    test_images, test_labels = images[:200], labels[:200]
    with torch.no_grad():
        assert (model(test_images).argmax(1) == test_labels).float().mean() > 0.85
    return model, test_images, test_labels


def test_attacks_at_epsilon_zero_change_nothing(digits_model):
    model, images, labels = digits_model
    assert torch.equal(fgsm(model, images, labels, 0.0), images)
    assert torch.equal(pgd(model, images, labels, 0.0, norm="linf"), images)
    assert torch.equal(pgd(model, images, labels, 0.0, norm="l2"), images)
    assert attack_success_rate(model, images, labels, images) == 0.0


@pytest.mark.parametrize("attack,epsilons", [("fgsm", [0, 0.05, 0.1, 0.2]),
                                             ("pgd_linf", [0, 0.05, 0.1, 0.2]),
                                             ("pgd_l2", [0, 0.5, 1.0, 2.0])])
def test_success_grows_with_epsilon(digits_model, attack, epsilons):
    model, images, labels = digits_model
    rates = success_vs_epsilon(model, images, labels, epsilons, attack)
    assert rates[0] == 0.0
    assert all(later >= earlier - 0.02 for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] > 0.5


def test_perturbations_stay_in_their_ball_and_in_the_image_range(digits_model):
    model, images, labels = digits_model
    linf = pgd(model, images, labels, 0.1, norm="linf", steps=5)
    assert (linf - images).abs().max() <= 0.1 + 1e-6
    l2 = pgd(model, images, labels, 1.0, norm="l2", steps=5)
    assert (l2 - images).flatten(1).norm(dim=1).max() <= 1.0 + 1e-5
    assert l2.min() >= 0 and l2.max() <= 1
    pgd_rate = attack_success_rate(model, images, labels, pgd(model, images, labels, 0.1, steps=10))
    fgsm_rate = attack_success_rate(model, images, labels, fgsm(model, images, labels, 0.1))
    assert pgd_rate >= fgsm_rate           # iterating inside the same ball does at least as well


class UnitSAE:
    """A stand-in SAE whose features are the positive and negative parts of each unit: the
    decomposition is then known exactly."""

    def encode(self, activations):
        return torch.cat([activations.clamp_min(0), (-activations).clamp_min(0)], dim=1)


def test_hijacked_features_name_the_planted_change():
    clean = torch.rand(50, 6)
    attacked = clean.clone()
    attacked[:, 2] += 3.0          # switched on
    attacked[:, 4] -= 5.0          # driven negative: feature 4 off, feature 6 + 4 = 10 on
    hijack = hijacked_features(UnitSAE(), clean, attacked, top_k=2)
    assert hijack.increased == [10, 2]
    assert hijack.decreased[0] == 4
    assert hijack.top_share == pytest.approx(1.0)


def test_feature_preferred_class():
    activations = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 2.0]])
    assert feature_preferred_class(UnitSAE(), activations, torch.tensor([0, 0, 1]), 2)[:2].tolist() == [0, 1]


def test_adversarial_path_reaches_the_target_class(digits_model):
    model, images, labels = digits_model
    image = images[0]
    target = (int(labels[0]) + 1) % 10
    path = adversarial_path(model, image, target, epsilon=4.0, steps=30)
    assert path.classes[0] == int(labels[0])
    assert path.classes[-1] == target and path.first_target_step is not None
    assert path.target_probability[-1] > path.target_probability[0]
    assert np.all(path.distances <= 4.0 + 1e-5)


def test_most_raised_feature_is_the_argmax_of_each_inputs_code_change():
    from mechinterp.superposition.sae import TopKSAE
    from mechinterp.adversarial import most_raised_feature
    sae = TopKSAE(6, 24, k=4, seed=0)
    sae.set_input_scale(torch.randn(64, 6, generator=torch.Generator().manual_seed(0)).abs())
    clean = torch.rand(10, 6, generator=torch.Generator().manual_seed(1))
    attacked = clean + 0.3 * torch.rand(10, 6, generator=torch.Generator().manual_seed(2))
    found = most_raised_feature(sae, clean, attacked)
    for row in range(10):
        with torch.no_grad():
            change = (sae.encode(attacked[row:row + 1]) - sae.encode(clean[row:row + 1]))[0].tolist()
        assert change[int(found[row])] == max(change)


def test_feature_preferred_class_is_the_argmax_of_numpys_class_means():
    generator = torch.Generator().manual_seed(5)
    activations = torch.randn(200, 6, generator=generator)
    labels = torch.randint(0, 3, (200,), generator=generator)      # classes 0-2 of 4: 3 is empty
    codes = UnitSAE().encode(activations).double().numpy()
    means = np.stack([codes[labels.numpy() == c].mean(axis=0) for c in range(3)])
    found = feature_preferred_class(UnitSAE(), activations, labels, n_classes=4)
    np.testing.assert_array_equal(found, means.argmax(axis=0))     # the empty class never wins


def test_success_rate_counts_only_inputs_the_model_had_right():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))                           # predicted class: larger value
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])                            # the last one is already wrong
    adversarial = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # of the three correct inputs, the first and third are flipped; the last does not count
    assert attack_success_rate(model, images, labels, adversarial) == pytest.approx(2 / 3)
    assert attack_success_rate(model, images[3:], labels[3:], adversarial[3:]) == 0.0


def test_success_vs_epsilon_is_the_named_attacks_rate_at_each_epsilon(digits_model):
    model, images, labels = digits_model
    rates = success_vs_epsilon(model, images, labels, [0.0, 0.05, 0.1], "fgsm")
    expected = [0.0] + [attack_success_rate(model, images, labels, fgsm(model, images, labels, e))
                        for e in (0.05, 0.1)]
    assert rates == pytest.approx(expected)
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        success_vs_epsilon(model, images, labels, [0.1], "cw")


def test_attacks_on_standardised_features_move_each_input_by_epsilon_not_to_the_pixel_box():
    """Trial S: tabular features standardised to about -2.7..13.9 were clamped to [0, 1] by every
    attack, so FGSM at epsilon 0.001 moved inputs by up to 12.9 and flipped 21% of them."""
    from mechinterp.adversarial import input_bounds
    generator = torch.Generator().manual_seed(0)
    features = 2.5 * torch.randn(64, 6, generator=generator)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    with torch.no_grad():
        labels = model(features).argmax(1)
    bounds = input_bounds(features)
    assert bounds == (float(features.min()), float(features.max())) and bounds[0] < 0 < 1 < bounds[1]
    moved = fgsm(model, features, labels, 0.001, bounds=bounds)
    inputs = features.clone().requires_grad_(True)       # the signed gradient, by autograd directly
    torch.nn.functional.cross_entropy(model(inputs), labels, reduction="sum").backward()
    expected = (features + 0.001 * inputs.grad.sign()).clamp(*bounds)
    assert torch.allclose(moved, expected, atol=1e-7) and float((moved - features).abs().max()) <= 0.001 + 1e-6
    assert float((fgsm(model, features, labels, 0.001) - features).abs().max()) > 1    # the pixel box
    stepped = pgd(model, features, labels, 0.05, norm="linf", steps=5, bounds=bounds)
    assert float((stepped - features).abs().max()) <= 0.05 + 1e-6
    assert success_vs_epsilon(model, features, labels, [0, 0.001], "fgsm", bounds=bounds)[1] == 0.0
    assert input_bounds(torch.rand(10, 1, 4, 4)) == (0.0, 1.0)               # images: the pixel range
