"""Linear probes: how linearly decodable is a property from a layer, against two baselines?

A probe is a logistic regression (scikit-learn) from a layer's activations to labels, scored on
held-out inputs. Its accuracy means little alone (Alain & Bengio 2016), so every probe reports
  chance            the majority-class rate on the test split (what a constant guess gets)
  control           the same probe trained on shuffled labels (Hewitt & Liang 2019's control
                    task, for inputs that have no word types): what the probe gets from its own
                    capacity, with no structure to find
  selectivity       accuracy - control accuracy

    result = probe(features, labels)                       # ProbeResult
    results = probe_layers(model, images, labels, layers)  # {layer: ProbeResult}, hooks.capture
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mechinterp.activations import Pool, layer_features, numpy_rows
from mechinterp.small_fits import small_blas


@dataclass
class ProbeResult:
    accuracy: float             # held-out accuracy on the true labels
    train_accuracy: float
    chance: float               # majority-class rate on the held-out split
    control_accuracy: float     # held-out accuracy of a probe trained on shuffled labels
    control_train_accuracy: float

    @property
    def selectivity(self) -> float:
        return self.accuracy - self.control_accuracy

    def as_dict(self) -> dict:
        return {**asdict(self), "selectivity": self.selectivity}


def _fit_probe(train_x, train_y, regularisation: float, seed: int):
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=regularisation, max_iter=500, random_state=seed))
    with small_blas():
        return model.fit(train_x, train_y)


def probe(features, labels, test_fraction: float = 0.3, regularisation: float = 1.0,
          seed: int = 0) -> ProbeResult:
    """Fit a linear probe and its shuffled-label control on a train split; score both on the test split."""
    x = numpy_rows(features)
    y = torch.as_tensor(labels).cpu().numpy()
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=test_fraction,
                                                        random_state=seed, stratify=y)
    fitted = _fit_probe(train_x, train_y, regularisation, seed)
    rng = np.random.default_rng(seed)
    shuffled_train, shuffled_test = rng.permutation(train_y), rng.permutation(test_y)
    control = _fit_probe(train_x, shuffled_train, regularisation, seed)
    _, counts = np.unique(test_y, return_counts=True)
    return ProbeResult(accuracy=float(fitted.score(test_x, test_y)),
                       train_accuracy=float(fitted.score(train_x, train_y)),
                       chance=float(counts.max() / counts.sum()),
                       control_accuracy=float(control.score(test_x, shuffled_test)),
                       control_train_accuracy=float(control.score(train_x, shuffled_train)))


def probe_layers(model, images: torch.Tensor, labels, layers: Sequence[str], pool: Pool = 4,
                 regularisation: float = 1.0, seed: int = 0) -> dict[str, ProbeResult]:
    """A probe on every layer (conv maps average-pooled to pool x pool first, to keep probes small)."""
    features = layer_features(model, images, layers, pool=pool)
    return {layer: probe(features[layer], labels, regularisation=regularisation, seed=seed)
            for layer in layers}
