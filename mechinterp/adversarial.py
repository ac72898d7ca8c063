"""Adversarial examples, and what they change inside the model, read through a sparse autoencoder.

    adversarial = fgsm(model, images, labels, epsilon=0.03)                 # Goodfellow et al. 2015
    adversarial = pgd(model, images, labels, epsilon=0.03, norm="linf")     # Madry et al. 2018
    adversarial = pgd(model, images, labels, epsilon=1.0, norm="l2", steps=20)
    rates = success_vs_epsilon(model, images, labels, [0, 0.01, 0.03], attack="pgd_linf")
    hijack = hijacked_features(sae, clean_acts, adversarial_acts, top_k=8)  # sae.encode(acts)
    path = adversarial_path(model, image, target_class=3, epsilon=2.0)      # class along the way

The activation change of an attack, delta a = a(x') - a(x), is dense and unreadable in the unit
basis; encoded by an SAE it becomes a short list of features switched on or off ("hijacked").
Any object with an `encode(activations) -> codes` method serves as the SAE. Attacked inputs stay in
`bounds`: (0, 1) by default, the pixel range of images here; input_bounds(inputs) gives that box
widened to the data's own range, for normalised images and standardised tabular features (which
a [0, 1] clamp would move far further than epsilon), and None keeps no box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mechinterp.device import model_device

ATTACKS = ("fgsm", "pgd_linf", "pgd_l2")
PIXELS = (0.0, 1.0)


def input_bounds(inputs: torch.Tensor) -> tuple[float, float]:
    """The box attacked inputs stay in: [0, 1], widened to the inputs' own minimum and maximum."""
    return min(PIXELS[0], float(inputs.min())), max(PIXELS[1], float(inputs.max()))


def clip(inputs: torch.Tensor, bounds: tuple[float, float] | None) -> torch.Tensor:
    return inputs if bounds is None else inputs.clamp(*bounds)


def loss_gradient(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d cross-entropy / d images (summed over the batch, so each image gets its own gradient)."""
    images = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(images), labels, reduction="sum")
        gradient, = torch.autograd.grad(loss, images)
    return gradient


def fgsm(model, images: torch.Tensor, labels: torch.Tensor, epsilon: float,
         bounds: tuple[float, float] | None = PIXELS) -> torch.Tensor:
    """One signed-gradient step of size epsilon (L-infinity), clipped to `bounds`."""
    device = model_device(model)
    images, labels = images.to(device), labels.to(device)
    gradient = loss_gradient(model, images, labels)
    return clip(images + epsilon * gradient.sign(), bounds).detach()


def _per_example_norm(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *[1] * (tensor.ndim - 1))


def project(delta: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """Nearest perturbation inside the epsilon ball of the given norm."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    if norm == "l2":
        return delta * (epsilon / _per_example_norm(delta)).clamp(max=1.0)
    raise ValueError(f"unknown norm {norm!r}: use 'linf' or 'l2'")


def _ascent_step(gradient: torch.Tensor, step_size: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return step_size * gradient.sign()
    return step_size * gradient / _per_example_norm(gradient)


def pgd(model, images: torch.Tensor, labels: torch.Tensor, epsilon: float, norm: str = "linf",
        steps: int = 10, step_size: float | None = None, target: torch.Tensor | None = None,
        record_path: bool = False, bounds: tuple[float, float] | None = PIXELS):
    """Projected gradient descent inside the epsilon ball around each image (and inside `bounds`).

    Untargeted: raise the loss of the true label. With `target` (class per image): lower the loss
    of the target class. step_size defaults to 2.5 epsilon / steps (Madry et al.). With
    record_path=True returns (adversarial, [iterate after each step])."""
    device = model_device(model)
    original, labels = images.to(device), labels.to(device)
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    sign = -1.0 if target is not None else 1.0
    goal = target.to(device) if target is not None else labels
    current, path = original.clone(), []
    for _ in range(steps):
        gradient = sign * loss_gradient(model, current, goal)
        moved = current + _ascent_step(gradient, step_size, norm)
        current = clip(original + project(moved - original, epsilon, norm), bounds).detach()
        path.append(current.cpu())
    return (current, path) if record_path else current


def run_attack(model, images, labels, epsilon: float, attack: str, steps: int = 10,
               bounds: tuple[float, float] | None = PIXELS) -> torch.Tensor:
    """One of ATTACKS by name."""
    if attack == "fgsm":
        return fgsm(model, images, labels, epsilon, bounds)
    if attack in ("pgd_linf", "pgd_l2"):
        return pgd(model, images, labels, epsilon, norm=attack.split("_")[1], steps=steps, bounds=bounds)
    raise ValueError(f"unknown attack {attack!r}: use one of {ATTACKS}")


def attack_success_rate(model, images, labels, adversarial) -> float:
    """Fraction of the correctly classified inputs that the attack makes misclassified."""
    device = model_device(model)
    labels = labels.to(device)
    with torch.no_grad():
        clean_correct = model(images.to(device)).argmax(1) == labels
        adversarial_wrong = model(adversarial.to(device)).argmax(1) != labels
    if not clean_correct.any():
        return 0.0
    return float((adversarial_wrong & clean_correct).sum() / clean_correct.sum())


def success_vs_epsilon(model, images, labels, epsilons: Sequence[float], attack: str = "pgd_linf",
                       steps: int = 10, bounds: tuple[float, float] | None = PIXELS) -> list[float]:
    """Attack success rate at each epsilon (epsilon 0 leaves the images as they are: rate 0)."""
    rates = []
    for epsilon in epsilons:
        adversarial = images if epsilon == 0 else run_attack(model, images, labels, epsilon,
                                                             attack, steps, bounds)
        rates.append(attack_success_rate(model, images, labels, adversarial))
    return rates


@dataclass
class Hijack:
    increased: list[int]            # SAE features the attack switched on most, strongest first
    increased_by: list[float]       # their mean code change
    decreased: list[int]            # features it switched off most
    decreased_by: list[float]
    top_share: float                # share of the total |code change| carried by the top features
    code_change: np.ndarray         # (features,) mean code change over the inputs


def hijacked_features(sae, clean_activations: torch.Tensor, adversarial_activations: torch.Tensor,
                      top_k: int = 8) -> Hijack:
    """Encode a(x) and a(x') with the SAE and rank features by their mean code change."""
    with torch.no_grad():
        change = (sae.encode(adversarial_activations) - sae.encode(clean_activations)).double()
    mean_change = change.mean(dim=0).cpu().numpy()
    magnitude = change.abs().mean(dim=0).cpu().numpy()
    up, down = np.argsort(-mean_change)[:top_k], np.argsort(mean_change)[:top_k]
    top_share = np.sort(magnitude)[::-1][:2 * top_k].sum() / max(magnitude.sum(), 1e-12)
    return Hijack(up.tolist(), mean_change[up].tolist(), down.tolist(), mean_change[down].tolist(),
                  float(top_share), mean_change)


def feature_preferred_class(sae, activations: torch.Tensor, labels: torch.Tensor,
                            n_classes: int) -> np.ndarray:
    """For each SAE feature, the class on whose inputs its mean code is largest."""
    with torch.no_grad():
        codes = sae.encode(activations).double().cpu()
    labels = torch.as_tensor(labels).cpu()
    means = torch.stack([codes[labels == c].mean(dim=0) if (labels == c).any()
                         else torch.full((codes.shape[1],), -np.inf, dtype=torch.float64)
                         for c in range(n_classes)])
    return means.argmax(dim=0).numpy()


@dataclass
class AdversarialPath:
    images: torch.Tensor          # (steps + 1, C, H, W), the clean image first
    target_class: int
    classes: np.ndarray           # predicted class at each step
    probabilities: np.ndarray     # (steps + 1, classes) softmax at each step
    distances: np.ndarray         # L2 distance from the clean image

    @property
    def target_probability(self) -> np.ndarray:
        return self.probabilities[:, self.target_class]

    @property
    def first_target_step(self) -> int | None:
        """The first step classified as the target class (None if it never is)."""
        hits = np.flatnonzero(self.classes == self.target_class)
        return int(hits[0]) if len(hits) else None


def adversarial_path(model, image: torch.Tensor, target_class: int, epsilon: float,
                     norm: str = "l2", steps: int = 20, step_size: float | None = None,
                     bounds: tuple[float, float] | None = PIXELS) -> AdversarialPath:
    """Targeted PGD from one image towards `target_class`, recording every iterate."""
    device = model_device(model)
    target = torch.tensor([target_class], device=device)
    with torch.no_grad():
        label = model(image[None].to(device)).argmax(1)
    step_size = step_size or 2.0 * epsilon / steps
    _, iterates = pgd(model, image[None], label, epsilon, norm, steps, step_size, target=target,
                      record_path=True, bounds=bounds)
    images = torch.cat([image[None].cpu()] + iterates)
    with torch.no_grad():
        probabilities = model(images.to(device)).softmax(1).cpu().double()
    distances = (images - image.cpu()).flatten(1).norm(dim=1).double().numpy()
    return AdversarialPath(images, target_class, probabilities.argmax(1).numpy(),
                           probabilities.numpy(), distances)


def most_raised_feature(sae, clean_activations: torch.Tensor,
                        adversarial_activations: torch.Tensor) -> torch.Tensor:
    """(inputs,) for each input, the SAE feature whose code the attack raised most (on the CPU)."""
    with torch.no_grad():
        change = sae.encode(adversarial_activations) - sae.encode(clean_activations)
    return change.argmax(dim=1).cpu()
