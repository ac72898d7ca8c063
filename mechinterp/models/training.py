"""Training and evaluating a classifier: the one loop every zoo model goes through.

    from mechinterp.models.training import TrainingSettings, train_classifier, accuracy
    settings = TrainingSettings(epochs=4, batch_size=64, learning_rate=3e-3, seed=0)
    report = train_classifier(model, train_data, settings, device, description="shapes-cnn-a")
    accuracy(model, test_data, device)
    evaluate(model, test_data, device)     # {"accuracy": ..., "per_class": {...}}

Adam or SGD with a one-cycle learning-rate schedule (optionally with batch norm that is folded into
the convs afterwards, see batchnorm.py), shuffled with a generator seeded from the
settings; the model's initial weights come from seed_everything(seed) before it is built
(the zoo does that). On the CPU the same settings give bit-identical weights on reruns.
A tqdm bar shows progress (it hides itself when the output is not a terminal).
A dataset with no classes (sparse-features: `data.reconstruct`) trains the model to give back its
input, with the mean squared error, as the toy models of superposition are trained (unweighted);
evaluate() then measures that error ({"loss": ...}), not an accuracy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from mechinterp.data import LabelledImages
from mechinterp.models.batchnorm import add_batchnorm, fold_batchnorm


@dataclass(kw_only=True)
class OptimiserSettings:
    """What every training run of the zoo sets, image classifier or sequence model."""
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0


@dataclass(kw_only=True)
class TrainingSettings(OptimiserSettings):
    epochs: int
    batchnorm: bool = False    # train with batch norm after each conv, then fold it in
    optimizer: str = "adam"    # "adam", or "sgd" (Nesterov momentum 0.9: smoother conv filters)


@dataclass
class TrainingReport:
    train_seconds: float
    images_per_second: float
    final_loss: float          # mean loss over the last epoch


def _memory_format(model: nn.Module, images: torch.Tensor) -> torch.memory_format:
    """channels_last is about twice as fast for small convolutions on the CPU (images only)."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return torch.channels_last if has_conv and images.dim() == 4 else torch.contiguous_format


def make_optimiser(model: nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=0.9,
                               nesterov=True, weight_decay=settings.weight_decay)
    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate,
                                weight_decay=settings.weight_decay)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}: use 'adam' or 'sgd'")


def train_classifier(model: nn.Module, data: LabelledImages, settings: TrainingSettings,
                     device: torch.device, description: str = "training") -> TrainingReport:
    """Train `model` in place on `data` with cross-entropy; return timing and final loss."""
    if settings.batchnorm:
        add_batchnorm(model)
    memory_format = _memory_format(model, data.images)
    model.to(device=device, memory_format=memory_format).train()
    images = data.images.to(device).contiguous(memory_format=memory_format)
    labels = data.labels.to(device)
    batches_per_epoch = (len(labels) + settings.batch_size - 1) // settings.batch_size
    optimiser = make_optimiser(model, settings)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.learning_rate, total_steps=settings.epochs * batches_per_epoch)
    shuffler = torch.Generator().manual_seed(settings.seed)
    start = time.perf_counter()
    with tqdm(total=settings.epochs * batches_per_epoch, desc=description, unit="batch",
              leave=False, disable=None) as progress:
        for _ in range(settings.epochs):
            epoch_loss = _train_epoch(model, images, labels if not data.reconstruct else None,
                                      settings.batch_size, optimiser, schedule, shuffler, progress)
    seconds = time.perf_counter() - start
    model.to(memory_format=torch.contiguous_format).eval()
    if settings.batchnorm:
        fold_batchnorm(model)
    return TrainingReport(seconds, settings.epochs * len(labels) / seconds, epoch_loss)


def batch_loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against the labels; with labels None, the squared error of the model's
    reconstruction of its inputs."""
    if labels is None:
        return nn.functional.mse_loss(model(inputs), inputs)
    return nn.functional.cross_entropy(model(inputs), labels)


def _train_epoch(model, images, labels, batch_size, optimiser, schedule, shuffler, progress):
    order = torch.randperm(len(images), generator=shuffler).to(images.device)
    total_loss = torch.zeros((), device=images.device)
    for first in range(0, len(order), batch_size):
        batch = order[first:first + batch_size]
        loss = batch_loss(model, images[batch], None if labels is None else labels[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        total_loss += loss.detach() * len(batch)
        progress.update(1)
    mean_loss = float(total_loss) / len(images)
    progress.set_postfix(loss=f"{mean_loss:.3f}")
    return mean_loss


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device,
            batch_size: int = 500) -> torch.Tensor:
    """Predicted class of every image (on the CPU), in batches."""
    model.eval()
    predictions = [model(images[i:i + batch_size].to(device)).argmax(dim=1).cpu()
                   for i in range(0, len(images), batch_size)]
    return torch.cat(predictions)


def accuracy(model: nn.Module, data: LabelledImages, device: torch.device) -> float:
    """Fraction of `data` that `model` classifies correctly."""
    return float((predict(model, data.images, device) == data.labels).float().mean())


@torch.no_grad()
def reconstruction_loss(model: nn.Module, data: LabelledImages, device: torch.device,
                        batch_size: int = 500) -> float:
    """Mean squared error of the model's reconstruction of `data`'s inputs."""
    model.eval()
    total = 0.0
    for first in range(0, len(data), batch_size):
        inputs = data.images[first:first + batch_size].to(device)
        total += float(batch_loss(model, inputs, None)) * len(inputs)
    return total / len(data)


def split_metrics(model: nn.Module, test: LabelledImages, device: torch.device,
                  train: LabelledImages | None = None) -> dict:
    """What meta.json records of a model on its dataset: test (and train) accuracy and the test
    accuracy per class; for a dataset with no classes, the test (and train) reconstruction loss."""
    key = "loss" if test.reconstruct else "accuracy"
    result = evaluate(model, test, device)
    metrics = {f"test_{key}": result[key], "test_images": len(test)}
    if "per_class" in result:
        metrics["test_accuracy_per_class"] = result["per_class"]
    if train is not None:
        metrics.update({f"train_{key}": evaluate(model, train, device)[key], "train_images": len(train)})
    return metrics


def evaluate(model: nn.Module, data: LabelledImages, device: torch.device) -> dict:
    """{"accuracy": overall, "per_class": {class name: accuracy on that class's images}}; for a
    dataset with no classes {"loss": reconstruction_loss}."""
    if data.reconstruct:
        return {"loss": reconstruction_loss(model, data, device)}
    correct = predict(model, data.images, device) == data.labels
    per_class = {name: float(correct[data.labels == index].float().mean())
                 for index, name in enumerate(data.class_names) if (data.labels == index).any()}
    return {"accuracy": float(correct.float().mean()), "per_class": per_class}
