"""Concept activation vectors and TCAV (Kim et al. 2018): does a human concept push a class up?

A CAV is the normal of a linear boundary, at one layer, between activations of concept examples
(say, striped images) and of random images. The TCAV score of a class is the fraction of that
class's inputs whose class logit rises when the layer's activation moves along the CAV (positive
directional derivative). A score is only evidence when it holds across many random sets, so:

  scores            one TCAV score per CAV trained against a different random set
  null_scores       the same with CAVs between two random sets (no concept at all)
  p_value           two-sided t-test of scores against null_scores (scipy; t_test_p)
  sign_consistency  fraction of the runs on the same side of 0.5 as their mean

    result = tcav(model, "relu2", concept_images, random_sets, class_images, class_index=3)
    table = concept_layer_map(model, layers, {"stripes": ..., "red": ...}, random_sets, ...)
    along = concept_attribution(model, "relu2", class_images, 3, result.mean_direction)

concept_attribution is integrated gradients at a layer projected on a concept direction v:
(Δa · v)(ḡ · v), with Δa the layer's change from a baseline input and ḡ the class logit's
gradient averaged along the straight path between them. Over an orthonormal basis these terms
sum to the layer IG total, F(x) - F(baseline); for v = a unit's axis it is that unit's IG.

Activations are read through mechinterp.hooks.capture; gradients with respect to a layer through
mechinterp.hooks.intervene, which adds a zero "tap" tensor to the layer's output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.stats import ttest_ind_from_stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from mechinterp.activations import layer_features, numpy_rows
from mechinterp.attribution.gradients import layer_path_gradients
from mechinterp.device import model_device
from mechinterp.hooks import intervene
from mechinterp.small_fits import small_blas


@dataclass
class CAV:
    direction: np.ndarray   # unit vector in the flattened activation space, towards the concept
    accuracy: float         # held-out accuracy of concept vs random: is the concept linearly there?


def train_cav(concept_features, random_features, seed: int = 0) -> CAV:
    """Logistic regression concept (1) vs random (0); the CAV is its normalised weight vector."""
    concept, random = numpy_rows(concept_features), numpy_rows(random_features)
    with small_blas():
        grams = concept @ concept.T, concept @ random.T, random @ random.T
    return cav_from_grams(concept, random, *grams, seed)


def cav_from_grams(concept: np.ndarray, random: np.ndarray, concept_gram: np.ndarray,
                   cross_gram: np.ndarray, random_gram: np.ndarray, seed: int = 0) -> CAV:
    """train_cav from the rows' inner products (concept @ concept.T, concept @ random.T, random @ random.T).

    With fewer examples than dimensions (a flattened conv layer), the L2-regularised solution lies
    in the span of the training rows (representer theorem), so the fit runs on the rows'
    coordinates in an orthonormal basis of that span, G V / sqrt(eigenvalues) from the Gram matrix
    G = x x^T = V diag(eigenvalues) V^T, and maps back: the same CAV without a D-sized basis, and
    concept_layer_map computes each Gram block once for all the CAVs that share it."""
    gram = np.block([[concept_gram, cross_gram], [cross_gram.T, random_gram]])
    y = np.r_[np.ones(len(concept)), np.zeros(len(random))]
    train, test = train_test_split(np.arange(len(y)), test_size=0.33, random_state=seed, stratify=y)
    with small_blas():
        if len(train) >= concept.shape[1]:          # rows outnumber columns: fit in the full space
            rows = np.concatenate([concept, random])
            train_coordinates, test_coordinates, to_rows = rows[train], rows[test], None
        else:
            to_rows = row_space_coordinates(gram[np.ix_(train, train)])
            train_coordinates = gram[np.ix_(train, train)] @ to_rows
            test_coordinates = gram[np.ix_(test, train)] @ to_rows
        scale = np.abs(train_coordinates).mean() + 1e-12   # well-conditioned solver; rescales C
        classifier = LogisticRegression(max_iter=1000, random_state=seed)
        classifier.fit(train_coordinates / scale, y[train])
        accuracy = classifier.score(test_coordinates / scale, y[test])
        weights = classifier.coef_[0] if to_rows is None else rows_combination(concept, random, train,
                                                                               to_rows @ classifier.coef_[0])
    return CAV(direction=weights / np.linalg.norm(weights), accuracy=float(accuracy))


def row_space_coordinates(gram: np.ndarray) -> np.ndarray:
    """(n, r) matrix P with x^T P an orthonormal basis of the span of x's rows, from G = x x^T
    (P = V / sqrt(eigenvalues), the right singular vectors written in the rows)."""
    eigenvalues, eigenvectors = np.linalg.eigh(gram)      # n x n: cheap for n << D
    kept = eigenvalues > eigenvalues.max() * 1e-12
    return eigenvectors[:, kept] / np.sqrt(eigenvalues[kept])


def rows_combination(concept: np.ndarray, random: np.ndarray, rows: np.ndarray,
                     weights: np.ndarray) -> np.ndarray:
    """sum_k weights[k] * row rows[k] of [concept; random], without stacking the two arrays."""
    full = np.zeros(len(concept) + len(random))
    full[rows] = weights
    return concept.T @ full[:len(concept)] + random.T @ full[len(concept):]


class ZeroShift:
    """An intervention adding a zero tensor that requires grad: the output is unchanged and
    d output / d shift is d output / d activation, with every layer's graph left connected."""

    def __init__(self):
        self.shift: torch.Tensor | None = None

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        self.shift = torch.zeros_like(activation, requires_grad=True)
        return activation + self.shift


def class_gradients(model, images: torch.Tensor, layers: Sequence[str] | str, class_index: int,
                    batch_size: int = 128):
    """d logit[class_index] / d activation(layer), flattened (N, D): one array for one layer
    name, a {layer: array} dict for a list of layers (all from the same backward passes)."""
    names = [layers] if isinstance(layers, str) else list(layers)
    device = model_device(model)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        taps = {name: ZeroShift() for name in names}
        with torch.enable_grad(), intervene(model, taps):
            logits = model(batch)
            gradients = torch.autograd.grad(logits[:, class_index].sum(),
                                            [taps[name].shift for name in names])
        for name, gradient in zip(names, gradients):
            parts[name].append(gradient.reshape(len(batch), -1).double().cpu())
    result = {name: torch.cat(chunks).numpy() for name, chunks in parts.items()}
    return result[layers] if isinstance(layers, str) else result


def tcav_score(gradients: np.ndarray, direction: np.ndarray) -> float:
    """Fraction of inputs whose class logit increases along the CAV."""
    return float((gradients @ direction > 0).mean())


@dataclass
class TCAVResult:
    scores: list[float]
    null_scores: list[float]
    cav_accuracies: list[float]
    p_value: float
    mean_direction: np.ndarray     # normalised mean of the concept's CAVs over the random sets

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def sign_consistency(self) -> float:
        above = np.mean(np.asarray(self.scores) > 0.5)
        return float(above if self.mean > 0.5 else 1 - above)

    def significant(self, alpha: float = 0.05) -> bool:
        return bool(self.p_value < alpha)

    def as_dict(self) -> dict:
        return {"mean": self.mean, "scores": self.scores, "null_scores": self.null_scores,
                "cav_accuracy": float(np.mean(self.cav_accuracies)), "p_value": self.p_value,
                "sign_consistency": self.sign_consistency}


def tcav_from_features(concept: np.ndarray, randoms: Sequence[np.ndarray], gradients: np.ndarray,
                       seed: int = 0) -> TCAVResult:
    """TCAV over CAVs against each random set, with a null from pairs of random sets."""
    grams = RandomSetGrams(randoms)
    return tcav_from_cavs(concept_cavs(concept, grams, seed), null_cavs(grams, seed), gradients)


class RandomSetGrams:
    """The random sets' rows and their Gram blocks r_i r_i^T, computed once and shared by every
    concept's CAVs and by the null CAVs (which depend on the random sets only)."""

    def __init__(self, randoms: Sequence[np.ndarray]):
        if len(randoms) < 2:
            raise ValueError("TCAV needs at least 2 random sets (one for the null distribution)")
        self.randoms = [numpy_rows(r) for r in randoms]
        self.stacked = np.concatenate(self.randoms)
        with small_blas():
            self.grams = [r @ r.T for r in self.randoms]


def concept_cavs(concept: np.ndarray, grams: RandomSetGrams, seed: int = 0) -> list[CAV]:
    """One CAV of the concept against each random set (random set i fitted with seed + i)."""
    concept = numpy_rows(concept)
    with small_blas():
        concept_gram = concept @ concept.T
        cross = concept @ grams.stacked.T          # one product for all the sets
    blocks = np.split(cross, np.cumsum([len(r) for r in grams.randoms])[:-1], axis=1)
    return [cav_from_grams(concept, random, concept_gram, block, gram, seed + i)
            for i, (random, block, gram) in enumerate(zip(grams.randoms, blocks, grams.grams))]


def null_cavs(grams: RandomSetGrams, seed: int = 0) -> list[CAV]:
    """CAVs between random set i and random set i + 1 (cyclically): TCAV's null distribution."""
    count, cavs = len(grams.randoms), []
    for i in range(count):
        j = (i + 1) % count
        with small_blas():
            cross = grams.randoms[i] @ grams.randoms[j].T
        cavs.append(cav_from_grams(grams.randoms[i], grams.randoms[j], grams.grams[i], cross,
                                   grams.grams[j], seed + i))
    return cavs


def tcav_from_cavs(cavs: Sequence[CAV], null: Sequence[CAV], gradients: np.ndarray) -> TCAVResult:
    """Scores of the concept's CAVs against the null CAVs' scores (two-sided t-test)."""
    with small_blas():     # one product for all the CAVs; column k is tcav_score(gradients, direction k)
        rises = gradients @ np.stack([cav.direction for cav in [*cavs, *null]]).T > 0
    scores, null_scores = rises[:, :len(cavs)].mean(0).tolist(), rises[:, len(cavs):].mean(0).tolist()
    mean_direction = np.mean([cav.direction for cav in cavs], axis=0)
    return TCAVResult(scores, null_scores, [cav.accuracy for cav in cavs], t_test_p(scores, null_scores),
                      mean_direction / max(np.linalg.norm(mean_direction), 1e-12))


def t_test_p(scores: Sequence[float], null_scores: Sequence[float]) -> float:
    """Two-sided Student's t-test p of scores against null_scores. Scores are fractions of inputs,
    and often all alike (every input's logit rises along every CAV): scipy's ttest_ind then warns
    of precision loss computing a spread that is exactly 0, so the test is taken from the samples'
    means and spreads, with one same value in both decided exactly (p 1; all alike but apart, p 0)."""
    scores, null_scores = np.asarray(scores, dtype=float), np.asarray(null_scores, dtype=float)
    if np.ptp(scores) == 0 and np.ptp(null_scores) == 0:
        return 1.0 if scores[0] == null_scores[0] else 0.0
    p_value = float(ttest_ind_from_stats(scores.mean(), spread(scores), len(scores),
                                         null_scores.mean(), spread(null_scores), len(null_scores)).pvalue)
    return p_value if np.isfinite(p_value) else 1.0


def spread(values: np.ndarray) -> float:
    """The sample standard deviation; exactly 0 for values all alike (no rounding residue)."""
    return 0.0 if np.ptp(values) == 0 else float(values.std(ddof=1))


def tcav(model, layer: str, concept_images: torch.Tensor, random_sets: Sequence[torch.Tensor],
         class_images: torch.Tensor, class_index: int, seed: int = 0) -> TCAVResult:
    """TCAV of one concept for one class at one layer."""
    concept = layer_features(model, concept_images, [layer])[layer].double().numpy()
    randoms = [layer_features(model, r, [layer])[layer].double().numpy() for r in random_sets]
    gradients = class_gradients(model, class_images, layer, class_index)
    return tcav_from_features(concept, randoms, gradients, seed)


def concept_layer_map(model, layers: Sequence[str], concepts: dict[str, torch.Tensor],
                      random_sets: Sequence[torch.Tensor], class_images: torch.Tensor,
                      class_index: int, seed: int = 0) -> dict[str, dict[str, TCAVResult]]:
    """{concept: {layer: TCAVResult}}: where each concept is linearly present and used. The random
    sets' Gram blocks and null CAVs are computed once per layer, not once per concept."""
    gradients = class_gradients(model, class_images, layers, class_index)
    randoms = [layer_features(model, images, layers) for images in random_sets]
    concept_features = {name: layer_features(model, images, layers) for name, images in concepts.items()}
    table: dict[str, dict[str, TCAVResult]] = {name: {} for name in concepts}
    for layer in layers:
        grams = RandomSetGrams([r[layer].double().numpy() for r in randoms])
        null = null_cavs(grams, seed)
        for name, features in concept_features.items():
            cavs = concept_cavs(features[layer].double().numpy(), grams, seed)
            table[name][layer] = tcav_from_cavs(cavs, null, gradients[layer])
    return table


def path_gradients(model, images: torch.Tensor, layer: str, class_index: int,
                   baseline: torch.Tensor | None = None, steps: int = 32):
    """(Δa, ḡ) flattened, (N, D) float64: the layer's change from the baseline input (zeros by
    default) and the class logit's gradient averaged over the straight path in the layer, from
    attribution.gradients.layer_path_gradients (Gauss-Legendre, one path point per pass)."""
    change, mean_gradient = layer_path_gradients(model, images, layer, class_index, baseline,
                                                 steps, internal_batch_size=len(images))
    return (change.double().flatten(1).cpu().numpy(),
            mean_gradient.double().flatten(1).cpu().numpy())


def concept_attribution(model, layer: str, images: torch.Tensor, class_index: int,
                        direction: np.ndarray, baseline: torch.Tensor | None = None,
                        steps: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Per input: (IG of the class logit along the unit concept direction, the layer IG total).
    `direction` may also be (K, D), K unit directions: then the first result is (N, K), one
    path integral shared by all of them."""
    change, mean_gradient = path_gradients(model, images, layer, class_index, baseline, steps)
    direction = np.asarray(direction, dtype=np.float64)
    along = (change @ direction.T) * (mean_gradient @ direction.T)
    return along, (change * mean_gradient).sum(axis=1)
