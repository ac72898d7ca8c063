"""A built model's layer descriptions (feature_layers, conv_layers, classifier_layer,
input_shape), from its zoo entry, else the class's own attributes, else found in its modules; and
the checks that make a wrong description the entry's problem when the zoo builds the model, not a
torch error at figure time.

    describe_layers(model, entry)   # sets the four attributes; a layer the model lacks is a FieldError
    gate_convs(model)               # {"features.1.block.1.fc1", ...}: left out of default feature_layers
    try_one_image(model, entry)     # a zero image of input_shape through the model, or a FieldError
    check_dataset_fits(model, entry, data)   # the dataset's images are what the model takes
    image_input_shape(model, "feature visualisation")   # (C, H, W); of vectors: a ValueError

The default feature_layers are the model's Conv2d modules except those of squeeze-excitation
gates (MobileNetV3, EfficientNet, RegNet: 1x1 convs of the pooled channels that scale them, whose
"features" are gate values, not maps); conv_layers keeps every Conv2d. input_shape is an image's
[C, H, W] or, for a model of (N, D) vectors, [D]. A FieldError names its
field: the zoo reports it after that field's zoo.yaml line.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.hooks import LayerNotFoundError, get_module, layer_names
from mechinterp.models.config import FieldError
from mechinterp.models.fields import datasets_of_shape

LAYER_DESCRIPTIONS = ("feature_layers", "conv_layers", "classifier_layer", "input_shape")
LAYER_FIELDS = ("feature_layers", "conv_layers", "classifier_layer")
SQUEEZE_EXCITATION = ("SEModule", "SEBlock", "SELayer")   # and any class named *SqueezeExcit*


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
    if not hasattr(model, "feature_layers"):   # the convs whose outputs are feature maps
        gates = gate_convs(model)
        model.feature_layers = [name for name in model.conv_layers if name not in gates]
    if not hasattr(model, "classifier_layer"):
        linears = layer_names(model, (nn.Linear,))
        model.classifier_layer = linears[-1] if linears else None
    if not hasattr(model, "input_shape"):
        model.input_shape = (3, 224, 224) if "torchvision" in entry else None
    return model


def gate_convs(model: nn.Module) -> set[str]:
    """The Conv2d modules inside squeeze-excitation gates (a module whose class is named like
    torchvision's SqueezeExcitation, timm's SqueezeExcite, or SEModule / SEBlock / SELayer): 1x1
    convs of the pooled channels whose output scales them, not a map of features."""
    gates = set()
    for name, module in model.named_modules():
        kind = type(module).__name__
        if "SqueezeExcit" in kind or kind in SQUEEZE_EXCITATION:
            gates |= {f"{name}.{inner}" for inner, conv in module.named_modules()
                      if isinstance(conv, nn.Conv2d)}
    return gates


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
    error = forward_error(model, torch.zeros(1, *shape))
    if error is not None:
        given = "input_shape" in entry
        raise FieldError("input_shape" if given else None, _misfit(model, shape, error, given)) from error


def forward_error(model: nn.Module, images: torch.Tensor) -> Exception | None:
    """The error the model's forward raises on `images` (eval mode, no gradients), or None."""
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(images)
    except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as error:   # a misfit, said in one line
        return error
    finally:
        model.train(training)
    return None


def declared_input_shape(model: nn.Module, entry: dict) -> tuple | None:
    """The [C, H, W] the entry or the model's class says it takes; None for torchvision's guess."""
    if "input_shape" in entry:
        return tuple(entry["input_shape"])
    shape = None if "torchvision" in entry else getattr(model, "input_shape", None)
    return tuple(shape) if shape else None


def check_dataset_fits(model: nn.Module, entry: dict, data) -> None:
    """The dataset's images (or vectors) have the model's declared input shape, or (none declared)
    one of them runs through its forward; else a FieldError on `dataset` naming both shapes and
    what to do, before anything is trained or evaluated on them."""
    given, name = tuple(data.images.shape[1:]), entry["dataset"]
    declared = declared_input_shape(model, entry)
    if declared is not None and declared != given:
        raise FieldError("dataset", _mismatch(model, entry, given, declared))
    error = None if declared is not None else forward_error(model, data.images[:1])
    if error is not None:
        fix = ("set input_shape to the [D] the model takes and name a dataset of vectors that long"
               if len(given) == 1 else "set input_shape to the [C, H, W] the model takes and add "
               "resize_dataset: true, or name a dataset whose images it takes")
        raise FieldError("dataset", f"dataset {name!r} gives {inputs_text(given)}, but "
                         f"{type(model).__name__}'s forward refuses them ({first_line(error)}): {fix}")


def _mismatch(model: nn.Module, entry: dict, given: tuple, declared: tuple) -> str:
    """Dataset and input_shape differ: what each is, the datasets that fit, and (images both)
    that resize_dataset would resize them."""
    name, own = entry["dataset"], "input_shape" in entry
    fitting = ", ".join(datasets_of_shape(declared)) or "torchvision:<Dataset>"
    source = "input_shape" if own else f"{type(model).__name__}'s own input_shape"
    taken = shape_text(declared) if len(declared) == 3 else inputs_text(declared)
    text = (f"dataset {name!r} gives {inputs_text(given)}, but the model takes {taken} "
            f"({source}): name a dataset of {inputs_text(declared)} ({fitting})")
    if len(given) == 3 and len(declared) == 3:
        resize = "add" if own else f"add input_shape: {list(declared)} and"
        return f"{text}, or {resize} resize_dataset: true to resize the {name} images to it"
    return f"{text}, or set input_shape to {list(given)}"


def inputs_text(shape, one: bool = False) -> str:
    """(3, 32, 32) -> "3x32x32 images"; (13,) -> "13-feature vectors" ("... vector" when one)."""
    text = f"{shape[0]}-feature vector" if len(shape) == 1 else f"{shape_text(shape)} image"
    return text if one else f"{text}s"


def image_input_shape(model: nn.Module, needs: str, shape=None) -> tuple[int, ...] | None:
    """`shape` (default the model's input_shape; None when it has none) when it is an image's
    [C, H, W]; a model of vectors is one clear ValueError naming its zoo entry and that `needs`
    needs an image model."""
    shape = getattr(model, "input_shape", None) if shape is None else shape
    if shape is None or len(shape) == 3:
        return None if shape is None else tuple(int(s) for s in shape)
    zoo_name = getattr(model, "zoo_name", None)
    entry = f"zoo entry {zoo_name!r}" if zoo_name else type(model).__name__
    raise ValueError(f"{entry} takes {inputs_text(shape)} (input_shape {list(shape)}), not images: "
                     f"{needs} needs an image model (input_shape [C, H, W]); use it on one")


def shape_text(shape) -> str:
    """(3, 32, 32) -> "3x32x32"."""
    return "x".join(map(str, shape))


def first_line(error: Exception) -> str:
    """"RuntimeError: <the first line of its message, at most 200 characters>"."""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"


def _misfit(model: nn.Module, shape, error: Exception, given: bool) -> str:
    name = type(model).__name__
    source = "input_shape" if given else f"{name}'s own input_shape"
    zero = "a zero image" if len(shape) == 3 else "a zero vector"
    return (f"{source} {list(shape)} does not fit {name}: {zero} of that shape fails in its "
            f"forward ({first_line(error)}); set input_shape in zoo.yaml to the "
            f"[C, H, W] of the images {name} takes, or [D] of the vectors")
