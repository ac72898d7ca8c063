"""TCAV on a model whose class logit is known to follow one direction of its hidden layer, and
against captum.concept.TCAV on a small MLP trained here."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.attribution.tcav import class_gradients, concept_layer_map, tcav, train_cav


class Quadratic(nn.Module):
    """logit 0 = h0 + |h|^2 / 2, logit 1 = -h0 + |h|^2 / 2: the gradient e0 + h varies by input,
    so only directions near +e0 (or -e0) raise (lower) logit 0 for almost every input."""

    def forward(self, h):
        bowl = 0.5 * (h ** 2).sum(dim=1)
        return torch.stack([h[:, 0] + bowl, -h[:, 0] + bowl], dim=1)


class ConceptModel(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.hidden, self.relay, self.head = nn.Linear(dims, dims), nn.Identity(), Quadratic()
        with torch.no_grad():
            self.hidden.weight.copy_(torch.eye(dims))
            self.hidden.bias.zero_()

    def forward(self, x):
        return self.head(self.relay(self.hidden(x)))


@pytest.fixture(scope="module")
def setup():
    generator = torch.Generator().manual_seed(0)
    dims = 10
    axis = torch.eye(dims)
    model = ConceptModel(dims).eval()
    concept = torch.randn(60, dims, generator=generator) * 0.5 + 2.0 * axis[0]
    other_concept = torch.randn(60, dims, generator=generator) * 0.5 + 2.0 * axis[1]
    randoms = [torch.randn(60, dims, generator=generator) * 0.5 for _ in range(10)]
    inputs = torch.randn(200, dims, generator=generator) * 0.5
    return model, concept, other_concept, randoms, inputs


def test_cav_points_at_the_concept():
    generator = torch.Generator().manual_seed(1)
    concept = torch.randn(100, 5, generator=generator) + torch.tensor([3.0, 0, 0, 0, 0])
    cav = train_cav(concept.numpy(), torch.randn(100, 5, generator=generator).numpy())
    assert cav.accuracy > 0.9
    assert cav.direction[0] > 0.9 and np.linalg.norm(cav.direction) == pytest.approx(1.0)


def test_cav_with_more_dimensions_than_rows_equals_the_full_space_fit():
    """The Gram-matrix fit (rows < dimensions) against logistic regression on the raw 400-dim rows
    with the same split and the same feature scale (taken from an SVD, not the Gram matrix)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    generator = torch.Generator().manual_seed(2)
    shift = torch.zeros(400)
    shift[:20] = 0.4
    concept = (torch.randn(30, 400, generator=generator) + shift).double().numpy()
    random = torch.randn(30, 400, generator=generator).double().numpy()
    cav = train_cav(concept, random, seed=3)
    x, y = np.concatenate([concept, random]), np.r_[np.ones(30), np.zeros(30)]
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.33, random_state=3, stratify=y)
    left, singular, _ = np.linalg.svd(train_x, full_matrices=False)
    scale = np.abs(left * singular).mean() + 1e-12
    reference = LogisticRegression(max_iter=1000, tol=1e-10, random_state=3).fit(train_x / scale, train_y)
    direction = reference.coef_[0] / np.linalg.norm(reference.coef_[0])
    assert np.dot(cav.direction, direction) > 0.9999
    assert cav.accuracy == pytest.approx(reference.score(test_x / scale, test_y))
    assert np.dot(cav.direction, shift.numpy()) > 0     # and it points towards the concept


def test_class_gradients_equal_the_analytic_gradient(setup):
    model, _, _, _, inputs = setup
    gradients = class_gradients(model, inputs, "hidden", class_index=1)
    assert gradients == pytest.approx((inputs - torch.eye(10)[0]).double().numpy(), abs=1e-6)


def test_tcav_is_significant_for_the_used_concept_in_both_signs(setup):
    model, concept, _, randoms, inputs = setup
    up = tcav(model, "hidden", concept, randoms, inputs, class_index=0)
    down = tcav(model, "hidden", concept, randoms, inputs, class_index=1)
    assert up.mean > 0.9 and down.mean < 0.1
    assert up.sign_consistency == 1.0 and down.sign_consistency == 1.0
    assert 0.2 < np.mean(up.null_scores) < 0.8
    assert up.significant() and down.significant()
    assert min(up.cav_accuracies) > 0.85     # classes 4 sd apart: about 98% separable


def test_concept_layer_map_covers_every_concept_and_layer(setup):
    model, concept, other, randoms, inputs = setup
    table = concept_layer_map(model, ["hidden", "relay"], {"used": concept, "unused": other},
                              randoms, inputs, class_index=0)
    assert set(table) == {"used", "unused"} and set(table["used"]) == {"hidden", "relay"}
    for layer in ("hidden", "relay"):
        assert table["used"][layer].significant()
        assert not table["unused"][layer].significant()
        assert table["unused"][layer].as_dict()["cav_accuracy"] > 0.9   # present, but not used


def test_tcav_needs_two_random_sets(setup):
    model, concept, _, randoms, inputs = setup
    with pytest.raises(ValueError, match="at least 2 random sets"):
        tcav(model, "hidden", concept, randoms[:1], inputs, class_index=0)


def test_concept_attribution_matches_captums_layer_ig_and_sums_over_a_basis(setup):
    from captum.attr import LayerIntegratedGradients
    from mechinterp.attribution.tcav import concept_attribution
    model, _, _, _, inputs = setup
    images = inputs[:16] + 1.0
    reference = LayerIntegratedGradients(model, model.hidden).attribute(
        images, baselines=torch.zeros_like(images), target=0, n_steps=32, method="gausslegendre")
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((10, 10)))[0]
    parts, totals = zip(*[concept_attribution(model, "hidden", images, 0, basis[:, i])
                          for i in range(10)])
    assert np.sum(parts, axis=0) == pytest.approx(totals[0], abs=1e-8)      # basis completeness
    assert totals[0] == pytest.approx(reference.sum(1).double().numpy(), abs=1e-5)
    unit_axis, _ = concept_attribution(model, "hidden", images, 0, np.eye(10)[3])
    assert unit_axis == pytest.approx(reference[:, 3].double().numpy(), abs=1e-5)


@pytest.fixture(scope="module")
def trained_mlp():
    """A small MLP trained here on a rule we chose: class 1 when x0 + 0.3 x1 > 0, so the concept
    "x0 is large" pushes class 1 up for every input, and "x5 is large" (unused) does not. TCAV
    reads its first hidden layer "1": behind it a ReLU layer makes the gradient vary by input
    (behind the last hidden layer it would be the same for all, and every score 0 or 1)."""
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    inputs = torch.randn(2000, 6, generator=generator)
    labels = (inputs[:, 0] + 0.3 * inputs[:, 1] > 0).long()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimiser.step()
    model.eval()
    accuracy = float((model(inputs).argmax(1) == labels).float().mean())
    axis = torch.eye(6)
    concepts = {"x0": torch.randn(80, 6, generator=generator) * 0.5 + 2.0 * axis[0],
                "x5": torch.randn(80, 6, generator=generator) * 0.5 + 2.0 * axis[5]}
    randoms = [torch.randn(80, 6, generator=generator) for _ in range(4)]
    return model, accuracy, concepts, randoms, torch.randn(300, 6, generator=generator)


def captum_tcav(model, layer, concept_images, randoms, inputs, target, save_path):
    """Captum's TCAV (captum.concept) of one concept against each random set: its sign-count
    scores and its CAVs (unit vectors towards the concept)."""
    from captum.concept import TCAV, Concept
    from torch.utils.data import DataLoader
    concept = Concept(0, "concept", DataLoader(concept_images, batch_size=40))
    random_concepts = [Concept(i + 1, f"random{i}", DataLoader(r, batch_size=40))
                       for i, r in enumerate(randoms)]
    experimental_sets = [[concept, random] for random in random_concepts]
    torch.manual_seed(0)      # captum's train/test split draws from torch, its SGD from numpy
    np.random.seed(0)
    interpreter = TCAV(model, [layer], save_path=str(save_path))
    scores = interpreter.interpret(inputs, experimental_sets, target=target)
    sign_counts, directions = [], []
    for concepts in experimental_sets:
        key = "-".join(str(c.id) for c in concepts)
        sign_counts.append(float(scores[key][layer]["sign_count"][0]))
        stats = interpreter.cavs[key][layer].stats
        row = list(stats["classes"]).index(0)
        weights = stats["weights"][row].double().numpy()
        directions.append(weights / np.linalg.norm(weights))
    return sign_counts, directions


@pytest.mark.parametrize("target", [0, 1])
def test_tcav_agrees_with_captum_concept_on_a_trained_mlp(trained_mlp, tmp_path, target):
    from mechinterp.attribution.tcav import tcav_score
    model, accuracy, concepts, randoms, inputs = trained_mlp
    assert accuracy > 0.97
    theirs, captum_cavs = captum_tcav(model, "1", concepts["x0"], randoms, inputs, target,
                                      tmp_path / "used")
    ours = tcav(model, "1", concepts["x0"], randoms, inputs, class_index=target)
    # same CAV -> the same score: the gradients and the sign count agree input for input
    gradients = class_gradients(model, inputs, "1", class_index=target)
    assert [tcav_score(gradients, cav) for cav in captum_cavs] == pytest.approx(theirs, abs=1e-6)
    # own CAVs (logistic regression, captum: SGD) -> nearly the same direction and score
    # (separable sets leave the boundary loose in 16 dimensions: about 0.75, random pairs ~0 +- 0.25)
    assert all(float(cav @ ours.mean_direction) > 0.6 for cav in captum_cavs)
    assert ours.scores == pytest.approx(theirs, abs=0.05)
    assert (ours.mean > 0.9) if target == 1 else (ours.mean < 0.1)   # the rule we trained


def fixed_direction_classifier(directions):
    """A captum.concept Classifier that 'learns' the given directions in turn (one per
    experimental set), so captum scores directions we chose."""
    from captum.concept._utils.classifier import Classifier

    class FixedDirections(Classifier):
        def __init__(self):
            self.remaining, self.current, self.labels = list(directions), None, None

        def train_and_eval(self, dataloader, **_):
            self.labels = sorted({int(label) for _, labels in dataloader for label in labels})
            self.current = torch.as_tensor(self.remaining.pop(0), dtype=torch.float32)
            return {"accs": torch.tensor(1.0)}

        def weights(self):                     # one row per class; class 0 is the concept
            return torch.stack([self.current, -self.current])

        def classes(self):
            return self.labels
    return FixedDirections()


def test_tcav_scores_equal_captums_for_directions_that_split_the_inputs(trained_mlp, tmp_path):
    """Random directions orthogonal to the mean gradient push the class up for some inputs and
    down for others: the scores fall in between, and must agree with captum's input by input,
    not only at 0 and 1."""
    from captum.concept import TCAV, Concept
    from torch.utils.data import DataLoader
    from mechinterp.attribution.tcav import tcav_score
    model, _, concepts, randoms, inputs = trained_mlp
    gradients = class_gradients(model, inputs, "1", class_index=1)
    mean = gradients.mean(axis=0) / np.linalg.norm(gradients.mean(axis=0))
    draws = np.random.default_rng(0).standard_normal((8, 16))
    directions = list(draws - np.outer(draws @ mean, mean))   # orthogonal to the mean gradient
    concept = Concept(0, "concept", DataLoader(concepts["x0"], batch_size=40))
    sets = [[concept, Concept(i + 1, f"random{i}", DataLoader(randoms[i % len(randoms)], batch_size=40))]
            for i in range(len(directions))]
    interpreter = TCAV(model, ["1"], classifier=fixed_direction_classifier(directions),
                       save_path=str(tmp_path))
    scores = interpreter.interpret(inputs, sets, target=1)
    theirs = [float(scores[f"0-{i + 1}"]["1"]["sign_count"][0]) for i in range(len(sets))]
    # (captum averages in float32; one input of 300 would differ by 0.0033)
    assert [tcav_score(gradients, d / np.linalg.norm(d)) for d in directions] == pytest.approx(
        theirs, abs=1e-6)
    assert sum(0.1 < score < 0.9 for score in theirs) >= 3, theirs


def test_concept_attribution_of_stacked_directions_is_layer_ig_of_each(setup):
    from mechinterp.attribution.gradients import layer_integrated_gradients
    from mechinterp.attribution.tcav import concept_attribution
    model, _, _, _, inputs = setup
    images = inputs[:16] + 1.0
    reference = layer_integrated_gradients(model, images, "hidden", target=0, steps=32)
    unit_axes, total = concept_attribution(model, "hidden", images, 0, np.eye(10)[[3, 7, 0]])
    assert unit_axes.shape == (16, 3)
    assert unit_axes == pytest.approx(reference.attributions[:, [3, 7, 0]].double().numpy(), abs=1e-5)
    assert total == pytest.approx(reference.attributions.sum(1).double().numpy(), abs=1e-5)


def test_tcav_runs_that_all_score_alike_give_a_p_value_without_scipys_precision_warning():
    """Every input's logit rising along every CAV gives scores that are all 1.0; scipy's ttest_ind
    warned of precision loss there. The p value comes from the samples' means and spreads instead:
    exact for identical runs, and scipy's own value otherwise."""
    import warnings
    from scipy.stats import ttest_ind
    from mechinterp.attribution.tcav import CAV, t_test_p, tcav_from_cavs
    rng = np.random.default_rng(0)
    gradients = np.abs(rng.normal(size=(20, 3))) + 0.1            # every input's gradient > 0 along e0
    cavs = [CAV(np.array([1.0, 0.0, 0.0]), 1.0) for _ in range(4)]
    null = [CAV(unit / np.linalg.norm(unit), 0.5) for unit in rng.normal(size=(4, 3))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = tcav_from_cavs(cavs, null, gradients)
        assert result.scores == [1.0] * 4 and 0 <= result.p_value <= 1
        assert t_test_p([0.3] * 5, [0.3] * 5) == 1.0 and t_test_p([0.7] * 5, [0.3] * 5) == 0.0
        varied = [0.5, 0.6, 0.45, 0.55, 0.52]
        assert t_test_p([0.7] * 5, varied) < 0.01
    assert t_test_p([0.3, 0.35, 0.4], varied) == pytest.approx(ttest_ind([0.3, 0.35, 0.4], varied).pvalue)
