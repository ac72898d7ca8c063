"""Datasets of vectors (N, D) for models that take no image: scikit-learn's tabular sets, and the
sparse features of the toy models of superposition. Nothing is downloaded.

    from mechinterp.data.vectors import load_vectors
    x, y, class_names, feature_names = load_vectors("wine", "train")   # (133, 13) standardised, 0..2
    x, y, _ = load_vectors("sparse-features", "test", n_features=20, feature_probability=0.05)

"wine" (13 features, 3 cultivars), "breast-cancer" (30 features, malignant/benign) and
"digits-flat" (load_digits' 8x8 pixels as 64 features, in [0, 1] as "digits") are split as
"digits" is: stratified, 25% held out, random_state 0. The tabular features are standardised with
the training split's mean and standard deviation (both splits alike, so the test set leaks nothing).
"sparse-features" is Elhage et al. (2022)'s input: each of n_features is non-zero with probability
feature_probability and then uniform on [0, 1], drawn by sample_features, the one sampler, which
the toy models (mechinterp.superposition.toy_models) train on too. It has no classes: a model
trained on it reconstructs its input (labels are -1).
"""
from __future__ import annotations

import numpy as np
import torch

TABULAR = {"wine": "load_wine", "breast-cancer": "load_breast_cancer"}
SPARSE_DEFAULTS = {"n_features": 20, "feature_probability": 0.1}
SPARSE_SPLITS = {"train": {"count": 8192, "seed": 0}, "test": {"count": 2048, "seed": 1_000_003}}
NO_CLASS = -1


def load_vectors(name: str, split: str, **options) -> tuple:
    """(float32 (N, D) vectors, int64 (N,) labels, class names[, feature names: the tabular
    sets']) of the vector dataset `name`."""
    if name == "sparse-features":
        return sparse_features(split, **options)
    if name == "digits-flat":
        from mechinterp.data.digits import CLASS_NAMES, load_digits_split
        images, labels = load_digits_split(split)
        return images.reshape(len(images), -1), labels, list(CLASS_NAMES)
    return _tabular(name, split)


def _tabular(name: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """One of scikit-learn's bundled tabular sets, split and standardised (see the docstring)."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from mechinterp.data.digits import TEST_FRACTION
    bunch = getattr(sklearn.datasets, TABULAR[name])()
    train_x, test_x, train_y, test_y = train_test_split(
        bunch.data, bunch.target.astype(np.int64), test_size=TEST_FRACTION, random_state=0,
        stratify=bunch.target)
    scaler = StandardScaler().fit(train_x)
    x, y = (train_x, train_y) if split == "train" else (test_x, test_y)
    return (scaler.transform(x).astype(np.float32), y, [str(n) for n in bunch.target_names],
            [str(n) for n in bunch.feature_names])


def sample_features(batch_size: int, feature_probability: torch.Tensor,
                    generator: torch.Generator | None = None, shared: bool = False) -> torch.Tensor:
    """(instances, features, batch): each entry 0 with probability S, else uniform on [0, 1].

    One uniform draw u per entry serves both purposes: the feature is present when u < p, and
    given that, u / p is uniform on [0, 1]. shared=True draws one u for all instances (common
    random numbers): each instance still sees exactly its own distribution, comparisons between
    instances get less noisy, and the random draws cost 1/instances as much."""
    probability = feature_probability[:, :, None]
    n_instances, n_features = feature_probability.shape
    u = torch.rand((1 if shared else n_instances, n_features, batch_size), generator=generator,
                   device=feature_probability.device)
    return torch.where(u < probability, u / probability, torch.zeros((), device=u.device))


def sparse_features(split: str, count: int | None = None, seed: int | None = None,
                    n_features: int | None = None, feature_probability: float | None = None):
    """`count` vectors of sparse features (defaults: 8,192 train, 2,048 test drawn from another
    seed; 20 features present with probability 0.1), with NO_CLASS labels."""
    n_features = n_features or SPARSE_DEFAULTS["n_features"]
    probability = SPARSE_DEFAULTS["feature_probability"] if feature_probability is None else feature_probability
    count = count or SPARSE_SPLITS[split]["count"]
    # a seed given moves both splits alike, so the test vectors are never the training ones
    generator = torch.Generator().manual_seed(SPARSE_SPLITS[split]["seed"] + (seed or 0))
    features = sample_features(count, torch.full((1, n_features), float(probability)), generator)
    return features[0].T.contiguous().numpy(), np.full(count, NO_CLASS, dtype=np.int64), []
