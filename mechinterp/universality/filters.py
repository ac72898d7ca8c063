"""First-layer filters of models, and the filters that ICA and sparse coding learn from photographs.

Trained vision models of every architecture grow oriented, localised, Gabor-like first-layer
filters; so do ICA (Hyvarinen & Oja 2000) and sparse coding (Olshausen & Field 1996) of
natural-image patches. That the same filters come from a learning rule with no task at all is the
simplest piece of evidence for universality.

    filters = first_layer_filters(model)                 # (out, in, k, k) numpy
    ica = ica_filters(patches, n_components=32)          # patches (N, C, k, k) -> (32, C, k, k)
    sparse = sparse_coding_filters(patches, 32)          # dictionary atoms, same shape
    best = best_match_similarity(filters, ica)           # |cosine| of each filter's best ICA match
    oriented = filter_orientedness(filters)              # 0 for a blob, near 1 for a grating
    images = filters_as_images(filters)                  # (out, k, k, 3) in [0, 1], 0 = grey
    ordered = strongest_first(filters)                   # largest L2 norm first
"""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import FastICA, MiniBatchDictionaryLearning
from torch import nn

from mechinterp.activations import numpy_rows
from mechinterp.hooks import get_module
from mechinterp.models.describe import image_input_shape
from mechinterp.small_fits import small_blas


def first_layer_module(model: nn.Module) -> nn.Module:
    """The first Conv2d (a zoo CNN's conv_layers[0]) or else the first Linear layer."""
    conv_layers = getattr(model, "conv_layers", None)
    if conv_layers:
        return get_module(model, conv_layers[0])
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return module
    raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to read filters from")


def first_layer_filters(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """First-layer weights as images (out, C, kh, kw). A Linear layer's rows are reshaped to the
    input shape (model.input_shape unless given), e.g. an MLP on 8x8 digits gives 8x8 filters."""
    module = first_layer_module(model)
    weight = module.weight.detach().cpu().double().numpy()
    if isinstance(module, nn.Conv2d):
        return weight
    shape = image_input_shape(model, "first-layer filters shown as images", input_shape)
    if shape is None:
        raise ValueError("a Linear first layer needs input_shape=(C, H, W) to show its rows as images")
    return weight.reshape(weight.shape[0], *shape)


def patch_rows(patches) -> np.ndarray:
    """(N, C, k, k) patches -> (N, C*k*k) float64 rows with each patch's mean (DC) removed."""
    rows = numpy_rows(patches)
    return rows - rows.mean(axis=1, keepdims=True)


def ica_filters(patches, n_components: int = 32, seed: int = 0, max_iter: int = 400) -> np.ndarray:
    """ICA basis functions of DC-removed patches (columns of the mixing matrix), shaped like the
    patches: the image features whose independent mixture makes a patch, comparable with
    sparse-coding atoms. (The unmixing rows also carry the whitening, which makes them noisier.)

    Removing each patch's mean leaves D - 1 dimensions, so at most D - 1 components are found
    (a 3x3 colour patch gives 26)."""
    rows = patch_rows(patches)
    n_components = min(n_components, rows.shape[1] - 1)
    ica = FastICA(n_components=n_components, whiten="unit-variance", random_state=seed,
                  max_iter=max_iter, tol=1e-3)
    with small_blas():
        ica.fit(rows)
    return ica.mixing_.T.reshape(n_components, *patches.shape[1:])


def zca_whiten(rows: np.ndarray, epsilon: float = 1e-2) -> np.ndarray:
    """Decorrelate pixels while staying close to the image basis (keeps filters localised)."""
    covariance = np.cov(rows, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    scale = 1.0 / np.sqrt(eigenvalues + epsilon * eigenvalues.max())
    return rows @ (eigenvectors * scale) @ eigenvectors.T


def sparse_coding_filters(patches, n_components: int = 32, alpha: float = 0.5, seed: int = 0,
                          batch_size: int = 256, max_iter: int = 20) -> np.ndarray:
    """Dictionary atoms that reconstruct whitened patches with sparse codes (Olshausen & Field)."""
    rows = zca_whiten(patch_rows(patches))
    rows = rows / rows.std()
    learner = MiniBatchDictionaryLearning(n_components=n_components, alpha=alpha,
                                          batch_size=batch_size, max_iter=max_iter,
                                          random_state=seed)
    with small_blas():
        learner.fit(rows)
    return learner.components_.reshape(n_components, *patches.shape[1:])


def _unit_rows(filters: np.ndarray) -> np.ndarray:
    rows = np.asarray(filters, dtype=np.float64).reshape(len(filters), -1)
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def best_match_similarity(filters: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """For each filter, the largest |cosine| with any reference filter (both DC-removed). Both
    must be (count, C, k, k) of one C and k: another shape is one error saying how to match it."""
    shape, reference_shape = tuple(np.shape(filters)[1:]), tuple(np.shape(reference)[1:])
    if shape != reference_shape:
        raise ValueError(f"best_match_similarity: the filters are {shape} (channels, height, width) "
                         f"but the reference filters are {reference_shape}: learn the reference from "
                         f"patches of the filters' shape, e.g. natural_patches({shape[-1]}, count, "
                         f"channels={shape[0]}) for a model of {shape[0]} input channel(s)")
    return np.abs(_unit_rows(filters) @ _unit_rows(reference).T).max(axis=1)


def filter_orientedness(filters: np.ndarray) -> np.ndarray:
    """How oriented each filter is, in [0, 1]: 1 - (smaller / larger) eigenvalue of the structure
    tensor of its luminance (0 for blobs and flat colour, near 1 for edges and gratings).

    A property of the weights; featvis.tuning.orientation_selectivity is the other measure, the
    selectivity index of a unit's responses to rotated stimuli."""
    grey = np.asarray(filters, dtype=np.float64).mean(axis=1)
    gy, gx = np.gradient(grey, axis=(1, 2))
    tensor = np.stack([(gx * gx).sum((1, 2)), (gx * gy).sum((1, 2)), (gy * gy).sum((1, 2))], 1)
    trace = tensor[:, 0] + tensor[:, 2]
    gap = np.sqrt((tensor[:, 0] - tensor[:, 2]) ** 2 + 4 * tensor[:, 1] ** 2)
    larger, smaller = (trace + gap) / 2, (trace - gap) / 2
    return 1 - smaller / np.maximum(larger, 1e-12)


def filters_as_images(filters) -> np.ndarray:
    """(out, C, h, w) filters -> (out, h, w, 3) images in [0, 1]: zero is mid-grey and each filter
    is scaled by its own largest |weight|, so its sign pattern shows; one channel becomes grey."""
    images = np.asarray(filters, dtype=np.float64).transpose(0, 2, 3, 1)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    scale = np.abs(images).reshape(len(images), -1).max(axis=1).reshape(-1, 1, 1, 1) + 1e-12
    return 0.5 + 0.5 * images / scale


def strongest_first(filters: np.ndarray) -> np.ndarray:
    """Filters sorted by their L2 norm, largest first: the ones the layer relies on most lead."""
    norms = np.linalg.norm(filters.reshape(len(filters), -1), axis=1)
    return filters[np.argsort(-norms, kind="stable")]
