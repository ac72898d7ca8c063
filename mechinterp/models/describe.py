"""A built model's layer descriptions (feature_layers, conv_layers, classifier_layer,
input_shape), from its zoo entry, else the class's own attributes, else found in its modules; and
the checks that make a wrong description the entry's problem when the zoo builds the model, not a
torch error at figure time.

    describe_layers(model, entry)   # sets the four attributes; a layer the model lacks is a FieldError
    try_one_image(model, entry)     # a zero image of input_shape through the model, or a FieldError

A FieldError names its field: the zoo reports it after that field's zoo.yaml line.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.hooks import LayerNotFoundError, get_module, layer_names
from mechinterp.models.config import FieldError

LAYER_DESCRIPTIONS = ("feature_layers", "conv_layers", "classifier_layer", "input_shape")
LAYER_FIELDS = ("feature_layers", "conv_layers", "classifier_layer")


def describe_layers(model: nn.Module, entry: dict) -> nn.Module:
    """Set feature_layers, conv_layers, classifier_layer, input_shape: from the entry if given,
    else from the model's own attributes, else guessed from its modules."""
    check_layers(model, entry)
    for key in LAYER_DESCRIPTIONS:
        if key in entry:
            value = entry[key]
            setattr(model, key, tuple(value) if key == "input_shape" else value)
    if not hasattr(model, "conv_layers"):
        model.conv_layers = layer_names(model, (nn.Conv2d,))
    if not hasattr(model, "feature_layers"):
        model.feature_layers = list(model.conv_layers)
    if not hasattr(model, "classifier_layer"):
        linears = layer_names(model, (nn.Linear,))
        model.classifier_layer = linears[-1] if linears else None
    if not hasattr(model, "input_shape"):
        model.input_shape = (3, 224, 224) if "torchvision" in entry else None
    return model


def check_layers(model: nn.Module, entry: dict) -> None:
    """Every layer the entry names is a module of the model (conv_layers: a Conv2d), else a
    FieldError with the nearest names (hooks.get_module's message)."""
    for field_name in LAYER_FIELDS:
        named = entry.get(field_name) or []
        for layer in [named] if isinstance(named, str) else named:
            try:
                module = get_module(model, layer)
            except LayerNotFoundError as error:
                raise FieldError(field_name, f"{field_name}: {error}") from None
            if field_name == "conv_layers" and not isinstance(module, nn.Conv2d):
                raise FieldError(field_name, f"conv_layers names {layer!r}, a {type(module).__name__}, "
                                 "not a Conv2d: list the Conv2d modules only, or leave conv_layers out")


def try_one_image(model: nn.Module, entry: dict) -> None:
    """Run a zero image of the model's input_shape through it (eval mode, no gradients, no random
    numbers drawn), so an input_shape that does not fit is a FieldError now."""
    shape = getattr(model, "input_shape", None)
    if not shape:
        return
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
    except (RuntimeError, ValueError) as error:
        given = "input_shape" in entry
        raise FieldError("input_shape" if given else None, _misfit(model, shape, error, given)) from error
    finally:
        model.train(training)


def _misfit(model: nn.Module, shape, error: Exception, given: bool) -> str:
    name = type(model).__name__
    reason = (str(error).strip().splitlines() or [""])[0]
    source = "input_shape" if given else f"{name}'s own input_shape"
    return (f"{source} {list(shape)} does not fit {name}: a zero image of that shape fails in its "
            f"forward ({type(error).__name__}: {reason[:200]}); set input_shape in zoo.yaml to the "
            f"[C, H, W] of the images {name} takes")
