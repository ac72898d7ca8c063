"""Representation similarity: CKA, debiased HSIC, SVCCA, mutual k-NN, streaming, layer matrices.

References are written here from the formulas (numpy, float64), independent of the engine code.
"""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.representations.similarity import (
    LayerFeatures, StreamingLinearCKA, as_layers, canonical_correlations, layer_similarity_matrix,
    linear_cka, mutual_knn_alignment, rbf_cka, similarity_matrix, streamed_cka_matrix, svcca,
    svcca_dims)


def correlated_features(n=200, dx=30, dy=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx))
    y = np.tanh(x @ rng.standard_normal((dx, dy))) + 0.5 * rng.standard_normal((n, dy))
    return x, y


def hsic_formula(k, l):
    """HSIC(K, L) = tr(K H L H) / (n - 1)^2 with H = I - 11^T / n."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def cka_formula(k, l):
    return hsic_formula(k, l) / np.sqrt(hsic_formula(k, k) * hsic_formula(l, l))


def unbiased_hsic_by_centring(k, l):
    """Kornblith et al.'s U-centring form of the unbiased HSIC (different algebra from Song's)."""
    def u_centre(gram):
        n = len(gram)
        gram = gram.copy()
        np.fill_diagonal(gram, 0)
        means = gram.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None] + means[None, :]
        np.fill_diagonal(gram, 0)
        return gram
    n = len(k)
    return (u_centre(k) * u_centre(l)).sum() / (n * (n - 3))


def test_cka_is_one_for_identical_inputs():
    x, _ = correlated_features()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)
    assert rbf_cka(x, x, threshold=0.5) == pytest.approx(1.0, abs=1e-12)
    wide = np.random.default_rng(1).standard_normal((40, 500))     # Gram path (D > N)
    assert linear_cka(wide, wide) == pytest.approx(1.0, abs=1e-12)


def test_linear_cka_invariant_to_orthogonal_transform_and_isotropic_scaling():
    x, y = correlated_features()
    rotation, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((y.shape[1],) * 2))
    reference = linear_cka(x, y)
    assert linear_cka(x, 7.5 * y @ rotation) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(0.01 * x, y @ rotation) == pytest.approx(reference, abs=1e-10)
    assert rbf_cka(x, 3.0 * y @ rotation) == pytest.approx(rbf_cka(x, y), abs=1e-10)


def test_linear_cka_not_invariant_to_invertible_linear_maps_unlike_cca():
    x, _ = correlated_features(dx=10)
    rng = np.random.default_rng(3)
    stretch = np.diag(np.geomspace(1, 100, 10)) @ np.linalg.qr(rng.standard_normal((10, 10)))[0]
    assert abs(np.linalg.det(stretch)) > 1.0                   # invertible
    assert linear_cka(x, x @ stretch) < 0.7                    # CKA sees the change
    correlations = canonical_correlations(x, x @ stretch)      # CCA does not
    assert correlations.min() == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("dx,dy,n", [(30, 20, 200), (400, 300, 60)])  # feature path, Gram path
def test_linear_cka_matches_direct_hsic_formula(dx, dy, n):
    x, y = correlated_features(n, dx, dy, seed=4)
    expected = cka_formula(x @ x.T, y @ y.T)
    assert linear_cka(x, y) == pytest.approx(expected, abs=1e-12)
    assert linear_cka(torch.tensor(x, dtype=torch.float32), y) == pytest.approx(expected, abs=1e-5)


def rbf(features, threshold):
    """exp(-d^2 / (2 threshold^2 median d^2)) over all pairs, diagonal zeros included."""
    squared = ((features[:, None, :] - features[None, :, :]) ** 2).sum(-1)
    return np.exp(-squared / (2 * threshold ** 2 * np.median(squared)))


def test_rbf_cka_matches_direct_formula():
    x, y = correlated_features(n=80)
    assert rbf_cka(x, y, threshold=0.5) == pytest.approx(cka_formula(rbf(x, 0.5), rbf(y, 0.5)),
                                                         abs=1e-10)


def test_debiased_cka_matches_u_centred_reference():
    x, y = correlated_features(n=50)
    k, l = x @ x.T, y @ y.T
    expected = unbiased_hsic_by_centring(k, l) / np.sqrt(
        unbiased_hsic_by_centring(k, k) * unbiased_hsic_by_centring(l, l))
    assert linear_cka(x, y, debiased=True) == pytest.approx(expected, abs=1e-10)


def test_debiased_cka_near_zero_for_independent_features_where_biased_is_not():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((100, 2000)), rng.standard_normal((100, 2000))
    biased, debiased = linear_cka(x, y), linear_cka(x, y, debiased=True)
    assert biased > 0.9             # few examples, many features: the biased estimator is large
    assert abs(debiased) < 0.05       # its spread over seeds is about 0.01


def test_svcca_is_one_for_invertible_maps_and_low_for_independent_data():
    x, _ = correlated_features(n=300, dx=8)
    mixed = x @ np.random.default_rng(6).standard_normal((8, 8))
    assert svcca(x, mixed) == pytest.approx(1.0, abs=1e-8)
    independent = np.random.default_rng(7).standard_normal((300, 8))
    assert svcca(x, independent) < 0.2


def test_canonical_correlations_match_covariance_formula():
    x, y = correlated_features(n=300, dx=6, dy=4)
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    matrix = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    expected = np.sqrt(np.sort(np.linalg.eigvals(matrix).real)[::-1][:4])
    assert canonical_correlations(x, y).numpy() == pytest.approx(expected, abs=1e-8)


def test_mutual_knn_is_one_for_identical_neighbourhoods_and_chance_for_independent():
    x, _ = correlated_features(n=300)
    rotation, _ = np.linalg.qr(np.random.default_rng(8).standard_normal((30, 30)))
    assert mutual_knn_alignment(x, 4.0 * x @ rotation, k=10) == pytest.approx(1.0)
    independent = np.random.default_rng(9).standard_normal((300, 30))
    assert mutual_knn_alignment(x, independent, k=10) < 0.1      # chance is 10 / 299
    with pytest.raises(ValueError, match="k must be"):
        mutual_knn_alignment(x, x, k=300)


def test_streamed_cka_equals_in_memory_cka_with_large_offsets():
    x, y = correlated_features(n=1000, dx=24, dy=16, seed=10)
    x, y = x + 1e4, y - 3e3     # large means: the naive sum-of-products formula loses digits here
    streaming = StreamingLinearCKA([("x", "y")])
    for start, stop in [(0, 1), (1, 257), (257, 700), (700, 1000)]:   # uneven batches
        streaming.update({"x": torch.tensor(x[start:stop]), "y": torch.tensor(y[start:stop])})
    assert streaming.count == 1000
    assert streaming.cka("x", "y") == pytest.approx(linear_cka(x, y), abs=1e-10)
    assert streaming.cka("x", "x") == pytest.approx(1.0, abs=1e-12)


class TinyCNN(nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1, self.relu1 = nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()
        self.fc = nn.Linear(8, 4)
        self.feature_layers, self.classifier_layer = ["relu1", "relu2"], "fc"

    def forward(self, x):
        return self.fc(self.relu2(self.conv2(self.relu1(self.conv1(x)))).mean((2, 3)))


def test_streamed_layer_matrix_equals_in_memory_matrix():
    images = torch.rand(300, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model_a, model_b = TinyCNN(0).eval(), TinyCNN(1).eval()
    layers = ["relu1", "relu2", "fc"]
    streamed = streamed_cka_matrix(model_a, model_b, images, layers, layers, batch_size=64, pool="mean")
    in_memory = layer_similarity_matrix(model_a, model_b, images, layers, layers, pool="mean")
    assert streamed.numpy() == pytest.approx(in_memory.numpy(), abs=1e-9)


@pytest.mark.parametrize("measure", ["linear_cka", "debiased_cka", "rbf_cka", "svcca", "mutual_knn"])
def test_layer_matrix_of_a_model_with_itself_has_unit_diagonal(measure):
    images = torch.rand(120, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    model = TinyCNN(0).eval()
    matrix = layer_similarity_matrix(model, model, images, ["relu1", "relu2", "fc"],
                                     ["relu1", "relu2", "fc"], measure, pool=None)
    assert matrix.shape == (3, 3)
    assert matrix.diagonal().numpy() == pytest.approx(1.0, abs=1e-6)


def test_layer_matrix_equals_pairwise_measures():
    generator = torch.Generator().manual_seed(2)
    features_a = {"p": torch.randn(60, 12, generator=generator),
                  "q": torch.randn(60, 300, generator=generator)}     # narrow and wide layers
    mixed = features_a["p"] @ torch.randn(12, 7, generator=generator)
    features_b = {"r": mixed + 0.3 * torch.randn(60, 7, generator=generator)}
    # every function with its own defaults: the registry must report the same numbers
    pairwise = {"linear_cka": linear_cka, "debiased_cka": lambda x, y: linear_cka(x, y, debiased=True),
                "rbf_cka": rbf_cka, "svcca": svcca, "mutual_knn": mutual_knn_alignment}
    for measure, reference in pairwise.items():
        matrix = similarity_matrix(features_a, features_b, measure)
        expected = [[reference(features_a[a], features_b[b]) for b in features_b] for a in features_a]
        assert matrix.numpy() == pytest.approx(np.array(expected), abs=1e-10), measure


def test_rbf_cka_defaults_to_half_the_median_distance():
    x, y = correlated_features(n=80)
    assert rbf_cka(x, y) == pytest.approx(cka_formula(rbf(x, 0.5), rbf(y, 0.5)), abs=1e-10)
    assert abs(rbf_cka(x, y) - rbf_cka(x, y, threshold=1.0)) > 1e-3    # the choice matters here


def test_svcca_is_capped_by_default_so_noise_does_not_look_similar():
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((60, 40)), rng.standard_normal((60, 40))   # independent noise
    uncapped = svcca(x, y, max_dims=len(x))
    assert uncapped > 0.6                          # CCA on ~40 directions of 60 inputs fits noise
    assert svcca(x, y) == pytest.approx(svcca(x, y, max_dims=svcca_dims(60)), abs=1e-12)
    assert svcca(x, y) < 0.5 * uncapped


def test_unknown_measure_is_named():
    with pytest.raises(ValueError, match="unknown measure 'cca'"):
        similarity_matrix({"a": torch.zeros(5, 2)}, {"b": torch.zeros(5, 2)}, "cca")


def test_as_layers_wraps_raw_features_once_and_gives_the_same_matrix():
    generator = torch.Generator().manual_seed(4)
    conv = torch.randn(30, 2, 5, 5, generator=generator)               # (N, C, H, W): 50 features
    dense = torch.randn(30, 6, generator=generator)
    kept = LayerFeatures(dense)
    layers = as_layers({"conv": conv, "dense": kept})
    assert layers["dense"] is kept and layers["conv"].features is conv
    flat = conv.reshape(30, -1).double().numpy()
    np.testing.assert_allclose(layers["conv"].gram.numpy(), flat @ flat.T, rtol=1e-12)
    assert layers["conv"].wide and not layers["dense"].wide              # 50 > 30 inputs > 6
    other = {"x": dense @ torch.randn(6, 4, generator=generator)}
    for measure in ("linear_cka", "rbf_cka", "svcca"):
        wrapped = similarity_matrix(as_layers({"conv": conv, "dense": dense}), as_layers(other), measure)
        raw = similarity_matrix({"conv": conv, "dense": dense}, other, measure)
        np.testing.assert_allclose(wrapped.numpy(), raw.numpy(), atol=1e-12, err_msg=measure)
