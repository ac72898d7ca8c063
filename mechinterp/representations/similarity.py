"""How similar are two representations of the same inputs? CKA, SVCCA and mutual k-NN.

Each measure takes two feature matrices over the same N inputs, x (N, Dx) and y (N, Dy); the
feature dimensions may differ. Everything is computed in float64 (sums of squares of many
activations lose digits in float32).

    linear_cka(x, y)                  # Kornblith et al. 2019; invariant to rotation and scale
    linear_cka(x, y, debiased=True)   # unbiased HSIC (Song et al. 2012): ~0 for unrelated data
    rbf_cka(x, y)                     # kernel CKA, bandwidth = threshold (0.5) * median distance
    svcca(x, y)                       # Raghu et al. 2017: SVD to 99% variance (at most N / 10
                                      # directions), then mean CCA
    mutual_knn_alignment(x, y, k=10)  # Huh et al. 2024: shared nearest neighbours
    streaming = StreamingLinearCKA([("a:relu1", "b:relu1")])   # batch by batch, memory O(D^2)
    matrix = similarity_matrix(features_a, features_b, "linear_cka")   # layers x layers

MEASURES names the five: linear_cka, debiased_cka, rbf_cka, svcca, mutual_knn. Each function's
defaults are the registry's (RBF_THRESHOLD, svcca_dims, KNN_K), so rbf_cka(x, y) is the value
similarity_matrix(..., "rbf_cka") reports for the same data.

CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with Gram matrices K = x x^T, L = y y^T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

from mechinterp.activations import layer_features, stream_layer_features

GRAM_CHUNK = 4096  # feature columns per step when building a Gram matrix of wide features
RBF_THRESHOLD = 0.5  # bandwidth = 0.5 x median distance, one of Kornblith et al.'s settings
KNN_K = 10


def svcca_dims(n: int) -> int:
    """SVCCA keeps 99% of the variance but at most N / 10 directions: CCA on as many directions as
    inputs fits noise and reports correlations near 1 for anything."""
    return max(1, n // 10)


def as_float64_rows(x) -> torch.Tensor:
    """Any (N, ...) array or tensor -> (N, D) float64 tensor (keeps a GPU tensor on its GPU)."""
    tensor = torch.as_tensor(x)
    return tensor.reshape(tensor.shape[0], -1).to(torch.float64)


def center_columns(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=0, keepdim=True)


def linear_gram(x) -> torch.Tensor:
    """x x^T in float64, accumulated over chunks of feature columns so wide x stays in float32."""
    x = torch.as_tensor(x)
    x = x.reshape(x.shape[0], -1)
    gram = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64, device=x.device)
    for chunk in x.split(GRAM_CHUNK, dim=1):
        chunk = chunk.to(torch.float64)
        gram += chunk @ chunk.T
    return gram


def rbf_gram(x, threshold: float = RBF_THRESHOLD) -> torch.Tensor:
    """exp(-|xi - xj|^2 / (2 threshold^2 median |xi - xj|^2)), Kornblith et al.'s kernel."""
    return rbf_from_linear_gram(linear_gram(x), threshold)


def rbf_from_linear_gram(dots: torch.Tensor, threshold: float = RBF_THRESHOLD) -> torch.Tensor:
    """The RBF Gram matrix from the dot products x x^T (distances need nothing else)."""
    squared_norms = dots.diagonal()
    squared_distances = (squared_norms[:, None] + squared_norms[None, :] - 2 * dots).clamp_min(0)
    median = _median(squared_distances.flatten())
    return torch.exp(-squared_distances / (2 * threshold ** 2 * median))


def _median(values: torch.Tensor) -> torch.Tensor:
    """numpy's median (mean of the two middle values for an even count); torch.median takes the lower."""
    middle = (len(values) + 1) // 2
    lower = values.kthvalue(middle).values
    return lower if len(values) % 2 else (lower + values.kthvalue(middle + 1).values) / 2


def center_gram(gram: torch.Tensor) -> torch.Tensor:
    """H K H with H = I - 11^T / n (double centring)."""
    gram = gram - gram.mean(dim=0, keepdim=True)
    return gram - gram.mean(dim=1, keepdim=True)


def u_centre_gram(gram: torch.Tensor) -> torch.Tensor:
    """Kornblith et al.'s U-centring: <U(K), U(L)> = n (n - 3) x the unbiased HSIC of Song et al."""
    n = gram.shape[0]
    if n < 4:
        raise ValueError(f"the debiased HSIC needs at least 4 examples, got {n}")
    gram = gram - torch.diag_embed(gram.diagonal())
    means = gram.sum(dim=0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    gram = gram - means[:, None] - means[None, :]
    return gram - torch.diag_embed(gram.diagonal())


@dataclass
class CentredGram:
    """A Gram matrix centred once (plainly, or U-centred for the debiased estimator) with its
    Frobenius norm, so comparing two layers is one elementwise product."""
    matrix: torch.Tensor
    norm: torch.Tensor


def centred(gram: torch.Tensor, debiased: bool = False) -> CentredGram:
    matrix = u_centre_gram(gram) if debiased else center_gram(gram)
    return CentredGram(matrix, torch.linalg.matrix_norm(matrix))


def cka_of_centred(a: CentredGram, b: CentredGram) -> float:
    """CKA = <Kc, Lc> / (|Kc| |Lc|): the HSIC normalisation constants cancel."""
    return float((a.matrix * b.matrix).sum() / (a.norm * b.norm))


def hsic(gram_x: torch.Tensor, gram_y: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """HSIC of two Gram matrices: biased tr(KHLH)/(n-1)^2, or Song et al.'s unbiased estimator."""
    n = gram_x.shape[0]
    if not debiased:
        return (center_gram(gram_x) * center_gram(gram_y)).sum() / (n - 1) ** 2
    if n < 4:
        raise ValueError(f"the debiased HSIC needs at least 4 examples, got {n}")
    k = gram_x - torch.diag_embed(gram_x.diagonal())
    l = gram_y - torch.diag_embed(gram_y.diagonal())
    trace_term = (k * l).sum()
    sums_term = k.sum() * l.sum() / ((n - 1) * (n - 2))
    cross_term = 2.0 / (n - 2) * (k.sum(dim=0) @ l.sum(dim=0))
    return (trace_term + sums_term - cross_term) / (n * (n - 3))


def cka_from_grams(gram_x: torch.Tensor, gram_y: torch.Tensor, debiased: bool = False) -> float:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    cross = hsic(gram_x, gram_y, debiased)
    norm = torch.sqrt(hsic(gram_x, gram_x, debiased) * hsic(gram_y, gram_y, debiased))
    return float(cross / norm)


def linear_cka(x, y, debiased: bool = False) -> float:
    """Linear CKA of x (N, Dx) and y (N, Dy). Uses |y^T x|_F^2 / (|x^T x|_F |y^T y|_F) on centred
    features when they are narrower than N, and N x N Gram matrices otherwise (same value)."""
    if debiased or max(_width(x), _width(y)) > len(x):
        return cka_from_grams(linear_gram(x), linear_gram(y), debiased)
    x, y = center_columns(as_float64_rows(x)), center_columns(as_float64_rows(y))
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    return float(cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)))


def _width(x) -> int:
    shape = torch.as_tensor(x).shape
    return int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 1


def rbf_cka(x, y, threshold: float = RBF_THRESHOLD, debiased: bool = False) -> float:
    """Kernel CKA with RBF Gram matrices (bandwidth relative to the median distance)."""
    return cka_from_grams(rbf_gram(x, threshold), rbf_gram(y, threshold), debiased)


def principal_scores(x, variance_kept: float = 0.99, max_dims: int | None = None,
                     gram: torch.Tensor | None = None) -> torch.Tensor:
    """Projections of centred x on its top principal directions keeping `variance_kept` of the
    variance (the SV step of SVCCA). Uses the N x N Gram matrix (given, or computed) when x is
    wider than tall."""
    if _width(x) > len(x):
        gram = linear_gram(x) if gram is None else gram
        eigenvalues, eigenvectors = torch.linalg.eigh(center_gram(gram))
        eigenvalues, eigenvectors = eigenvalues.flip(0).clamp_min(0), eigenvectors.flip(1)
        scores_all = eigenvectors * eigenvalues.sqrt()
    else:
        u, s, _ = torch.linalg.svd(center_columns(as_float64_rows(x)), full_matrices=False)
        eigenvalues, scores_all = s ** 2, u * s
    fraction = eigenvalues.cumsum(0) / eigenvalues.sum()
    keep = int((fraction < variance_kept).sum()) + 1
    keep = min(keep, max_dims or keep, len(x) - 1)
    return scores_all[:, :keep]


def canonical_correlations(x, y) -> torch.Tensor:
    """Canonical correlations of x and y (descending), from the QR bases of the centred data."""
    qx, _ = torch.linalg.qr(center_columns(as_float64_rows(x)))
    qy, _ = torch.linalg.qr(center_columns(as_float64_rows(y)))
    return torch.linalg.svdvals(qx.T @ qy).clamp(0, 1)


def svcca(x, y, variance_kept: float = 0.99, max_dims: int | None = None) -> float:
    """Mean canonical correlation of the top principal subspaces of x and y (SVCCA), each at most
    max_dims directions (default svcca_dims(N); pass max_dims=len(x) for uncapped SVCCA)."""
    max_dims = svcca_dims(len(x)) if max_dims is None else max_dims
    scores_x = principal_scores(x, variance_kept, max_dims)
    scores_y = principal_scores(y, variance_kept, max_dims)
    return float(canonical_correlations(scores_x, scores_y).mean())


def knn_indices(x, k: int) -> torch.Tensor:
    """(N, k) indices of each row's k nearest other rows by cosine similarity."""
    return knn_from_gram(linear_gram(x), k)


def knn_from_gram(gram: torch.Tensor, k: int) -> torch.Tensor:
    """k nearest neighbours by cosine similarity, read from the dot products x x^T."""
    norms = gram.diagonal().clamp_min(1e-300).sqrt()
    similarity = gram / torch.outer(norms, norms)
    similarity.fill_diagonal_(-float("inf"))
    return similarity.topk(k, dim=1).indices


def knn_overlap(neighbours_x: torch.Tensor, neighbours_y: torch.Tensor) -> float:
    """Mean fraction of shared neighbours between two (N, k) neighbour-index tables."""
    n, k = neighbours_x.shape
    in_x = torch.zeros(n, n, dtype=torch.bool, device=neighbours_x.device)
    in_x.scatter_(1, neighbours_x, True)
    return float(in_x.gather(1, neighbours_y.to(in_x.device)).sum(dim=1).double().mean() / k)


def mutual_knn_alignment(x, y, k: int = KNN_K) -> float:
    """Mean fraction of each input's k nearest neighbours shared by the two representations."""
    if not 0 < k < len(x):
        raise ValueError(f"k must be between 1 and N - 1 = {len(x) - 1}, got {k}")
    return knn_overlap(knn_indices(x, k), knn_indices(y, k))


class StreamingLinearCKA:
    """Linear CKA between named feature streams, accumulated batch by batch in float64.

    Memory is O(D^2) per stream and never O(N): it keeps sums and cross-products of the features,
    shifted by the first batch's mean so the final centring subtracts numbers of similar size.

        streaming = StreamingLinearCKA([("a:relu1", "b:relu1"), ("a:relu1", "b:relu2")])
        for batch_a, batch_b in ...:
            streaming.update({"a:relu1": batch_a, "b:relu1": ..., "b:relu2": ...})
        streaming.cka("a:relu1", "b:relu2")
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self.pairs = list(dict.fromkeys(pairs))
        names = list(dict.fromkeys(name for pair in self.pairs for name in pair))
        self.products_needed = self.pairs + [(name, name) for name in names]
        self.count = 0
        self.shifts: dict[str, torch.Tensor] = {}
        self.sums: dict[str, torch.Tensor] = {}
        self.products: dict[tuple[str, str], torch.Tensor] = {}

    def update(self, features: dict[str, torch.Tensor]) -> None:
        """Add one batch: {stream name: (B, D) features}, the same B inputs for every stream."""
        shifted = {}
        for name, x in features.items():
            x = as_float64_rows(x)
            if name not in self.shifts:
                self.shifts[name] = x.mean(dim=0)
                self.sums[name] = torch.zeros_like(self.shifts[name])
            shifted[name] = x - self.shifts[name]
            self.sums[name] += shifted[name].sum(dim=0)
        for a, b in self.products_needed:
            if a in shifted and b in shifted:
                product = shifted[a].T @ shifted[b]
                self.products[(a, b)] = self.products.get((a, b), 0) + product
        self.count += len(next(iter(shifted.values())))

    def centred_product(self, a: str, b: str) -> torch.Tensor:
        """(x_a - mean)^T (x_b - mean) over all inputs seen."""
        return self.products[(a, b)] - torch.outer(self.sums[a], self.sums[b]) / self.count

    def cka(self, a: str, b: str) -> float:
        cross = torch.linalg.matrix_norm(self.centred_product(a, b)) ** 2
        norm_a = torch.linalg.matrix_norm(self.centred_product(a, a))
        norm_b = torch.linalg.matrix_norm(self.centred_product(b, b))
        return float(cross / (norm_a * norm_b))


class LayerFeatures:
    """One layer's (N, D) features; its linear Gram matrix is computed once, on first use, and
    every measure reads what it needs from it (CKA, RBF distances, cosine neighbours, PCA)."""

    def __init__(self, features):
        self.features = features
        self._gram = None

    @property
    def gram(self) -> torch.Tensor:
        if self._gram is None:
            self._gram = linear_gram(self.features)
        return self._gram

    @property
    def wide(self) -> bool:
        return _width(self.features) > len(self.features)


def as_layers(features: dict) -> dict[str, LayerFeatures]:
    """{layer: LayerFeatures}, keeping values that already are."""
    return {name: x if isinstance(x, LayerFeatures) else LayerFeatures(x) for name, x in features.items()}


def prepare_svcca(layer: LayerFeatures) -> torch.Tensor:
    n = len(layer.features)
    return principal_scores(layer.features, 0.99, svcca_dims(n), layer.gram if layer.wide else None)


def compare_svcca(scores_x: torch.Tensor, scores_y: torch.Tensor) -> float:
    return float(canonical_correlations(scores_x, scores_y).mean())


# Each measure is (prepare one layer once, compare two prepared layers), so a layers x layers
# matrix builds and centres each Gram matrix, principal subspace or neighbour table only once.
MEASURES: dict[str, tuple[Callable, Callable]] = {
    "linear_cka": (lambda layer: centred(layer.gram), cka_of_centred),
    "debiased_cka": (lambda layer: centred(layer.gram, debiased=True), cka_of_centred),
    "rbf_cka": (lambda layer: centred(rbf_from_linear_gram(layer.gram, RBF_THRESHOLD)),
                cka_of_centred),
    "svcca": (prepare_svcca, compare_svcca),
    "mutual_knn": (lambda layer: knn_from_gram(layer.gram, KNN_K), knn_overlap),
}


def similarity_matrices(features_a: dict[str, torch.Tensor], features_b: dict[str, torch.Tensor],
                        measures: Sequence[str] = tuple(MEASURES)) -> dict[str, torch.Tensor]:
    """{measure: (layers of a) x (layers of b) matrix} on the same N inputs, sharing each
    layer's Gram matrix between the measures. Values may be tensors or LayerFeatures (pass
    as_layers(features) once to reuse a model's Gram matrices across many comparisons)."""
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measure {unknown[0]!r}: use one of {sorted(MEASURES)}")
    layers_a, layers_b = list(as_layers(features_a).values()), list(as_layers(features_b).values())
    matrices = {}
    for measure in measures:
        prepare, compare = MEASURES[measure]
        prepared_a, prepared_b = [prepare(a) for a in layers_a], [prepare(b) for b in layers_b]
        rows = [[compare(a, b) for b in prepared_b] for a in prepared_a]
        matrices[measure] = torch.tensor(rows, dtype=torch.float64)
    return matrices


def similarity_matrix(features_a: dict[str, torch.Tensor], features_b: dict[str, torch.Tensor],
                      measure: str = "linear_cka") -> torch.Tensor:
    """(layers of a) x (layers of b) matrix of one of MEASURES on the same N inputs."""
    return similarity_matrices(features_a, features_b, [measure])[measure]


def streamed_cka_matrix(model_a, model_b, images: torch.Tensor, layers_a: Sequence[str],
                        layers_b: Sequence[str], batch_size: int = 256, pool=None) -> torch.Tensor:
    """Linear CKA for every (layer of a, layer of b), streaming the images through both models
    once; nothing of size N is kept."""
    pairs = [(f"a:{a}", f"b:{b}") for a in layers_a for b in layers_b]
    streaming = StreamingLinearCKA(pairs)
    stream_a = stream_layer_features(model_a, images, layers_a, batch_size, pool)
    stream_b = stream_layer_features(model_b, images, layers_b, batch_size, pool)
    for batch_a, batch_b in zip(stream_a, stream_b):
        streaming.update({**{f"a:{k}": v for k, v in batch_a.items()},
                          **{f"b:{k}": v for k, v in batch_b.items()}})
    rows = [[streaming.cka(f"a:{a}", f"b:{b}") for b in layers_b] for a in layers_a]
    return torch.tensor(rows, dtype=torch.float64)


def layer_similarity_matrix(model_a, model_b, images: torch.Tensor, layers_a: Sequence[str],
                            layers_b: Sequence[str], measure: str = "linear_cka",
                            batch_size: int = 256, pool=None) -> torch.Tensor:
    """Similarity of every layer of model_a with every layer of model_b on the same images."""
    features_a = layer_features(model_a, images, layers_a, batch_size, pool)
    features_b = layer_features(model_b, images, layers_b, batch_size, pool)
    return similarity_matrix(features_a, features_b, measure)
