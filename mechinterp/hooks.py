"""Read and change the activations of named modules of any torch.nn.Module.

PyTorch hooks are global state on the module, so every hook here lives inside a context manager
and is removed on exit, also when the forward pass raises. Module names are the ones
`model.named_modules()` gives ("layer1.0.conv2", "features.3", "fc").

    with capture(model, ["conv1", "fc"]) as acts:       # read
        logits = model(x)
    acts["conv1"].shape

    with intervene(model, {"conv1": zero_units([3, 5])}):   # change: fn(activation) -> activation
        ablated_logits = model(x)

    logits, acts = run_with_cache(model, x, ["conv1"])
    patched = patch_from_donor(model, target_x, donor_x, "conv1", units=[4])

    stop = last_call(model, ["conv1"], lambda: model(x))     # ("conv1", 1): nothing later is needed
    with capture(model, ["conv1"]) as acts, stop_after(model, *stop):
        forward_until_stopped(model, x)                       # the rest of the model never runs

An intervention is a plain function from the module's output tensor to a replacement tensor of
the same shape; the helpers below build the common ones (zero, mean, scale, replace, patch).
"""
from __future__ import annotations

import contextlib
import difflib
import warnings
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

Intervention = Callable[[torch.Tensor], torch.Tensor]


class LayerNotFoundError(KeyError):
    """A layer name that is not one of the model's named modules."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name`, or a clear error listing the closest names."""
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    if not isinstance(name, str):      # e.g. an index: a figure's ctx.layer turns a param's index into a name
        named = getattr(model, "feature_layers", None) or [n for n in modules if n][:5]
        raise LayerNotFoundError(f"layer {name!r} ({type(name).__name__}) is not a layer name: give the name, one "
                                 f"of {', '.join(map(repr, named))}, ... (in a figure, ctx.layer(model, param) "
                                 "turns a param that is an index into feature_layers into its name)")
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    names = ", ".join(repr(n) for n in list(modules)[1:25])
    raise LayerNotFoundError(f"{type(model).__name__} has no layer {name!r}.{hint} "
                             f"Layers are named as model.named_modules() gives them: {names}"
                             f"{', ...' if len(modules) > 25 else ''} (python -m mechinterp.models.layers "
                             "<zoo model> lists them all, in forward order)")


def layer_names(model: nn.Module, types: tuple[type, ...] = (nn.Conv2d, nn.Linear)) -> list[str]:
    """Names of the modules of the given types, in forward-definition order."""
    return [n for n, m in model.named_modules() if n and isinstance(m, types)]


def _first_tensor(output):
    """Modules may return tuples; the activation we read is the first tensor."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"module output of type {type(output).__name__} holds no tensor to hook")


def _warn_if_training(model: nn.Module) -> None:
    if model.training:
        warnings.warn(f"{type(model).__name__} is in training mode (dropout and batch-norm "
                      "statistics change activations); call model.eval() first", stacklevel=3)


@contextlib.contextmanager
def hooked(model: nn.Module, hooks: dict[str, Callable]) -> Iterator[None]:
    """Register forward hooks {layer name: hook(module, inputs, output)}; always remove them."""
    handles = []
    try:
        for name, hook in hooks.items():
            handles.append(get_module(model, name).register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def capture(model: nn.Module, layers: Iterable[str], detach: bool = True) -> Iterator[dict]:
    """Yield a dict that each forward pass fills with {layer: activation}.

    detach=False keeps the activation in the graph: gradients flow to it from the output and
    from it to the input (an in-place op later in the model would change it, so avoid those).
    A module called twice in one forward pass (torchvision reuses its `relu`) keeps the last call;
    intervene refuses such a module."""
    _warn_if_training(model)
    activations: dict[str, torch.Tensor] = {}

    def make_hook(name):
        def hook(module, inputs, output):
            tensor = _first_tensor(output)
            # a detached copy is cloned: later in-place ops (ReLU(inplace=True), `out += x`) would
            # overwrite it; with detach=False the tensor itself is kept, as a node of the graph
            activations[name] = tensor.detach().clone() if detach else tensor
        return hook

    with hooked(model, {name: make_hook(name) for name in layers}):
        yield activations


@contextlib.contextmanager
def intervene(model: nn.Module, interventions: dict[str, Intervention]) -> Iterator[None]:
    """Replace each named layer's output by intervention(output) during forward passes."""
    _warn_if_training(model)
    calls: dict[str, int] = {}

    def make_hook(name, change):
        def hook(module, inputs, output):
            _count_call(calls, name, model)
            tensor = _first_tensor(output)
            new = change(tensor)
            if new.shape != tensor.shape:
                raise ValueError(f"intervention on {name!r} returned shape {tuple(new.shape)}, "
                                 f"expected {tuple(tensor.shape)}")
            if isinstance(output, torch.Tensor):
                return new
            return (new, *output[1:])
        return hook

    reset = model.register_forward_pre_hook(lambda module, inputs: calls.clear())
    try:
        with hooked(model, {n: make_hook(n, f) for n, f in interventions.items()}):
            yield
    finally:
        reset.remove()


def _count_call(calls: dict[str, int], name: str, model: nn.Module) -> None:
    """An intervention must change one activation: a module the forward pass runs twice
    (torchvision's blocks reuse one `relu`) would be changed at both places."""
    calls[name] = calls.get(name, 0) + 1
    if calls[name] > 1:
        block = name.rpartition(".")[0]
        hint = f" (its block {block!r}, or the module before it)" if block else ""
        raise ValueError(f"layer {name!r} of {type(model).__name__} runs more than once per forward "
                         f"pass, so an intervention on it would change every use; intervene on a "
                         f"module that runs once{hint}. python -m mechinterp.models.layers lists them")


def run_with_cache(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str]):
    """One forward pass; return (output, {layer: activation})."""
    with torch.no_grad(), capture(model, layers) as activations:
        output = model(inputs)
    return output, dict(activations)


class StopForward(Exception):
    """Raised by stop_after's hook to end a forward pass once the layers needed have run."""


def last_call(model: nn.Module, layers: Iterable[str], run: Callable[[], object]) -> tuple[str, int] | None:
    """(layer, n): the n-th call of `layer` is the last call of any of `layers` in the forward pass
    `run()` makes; after it, the pass computes nothing the layers' activations depend on. None when
    no layer ran (then nothing may be cut)."""
    calls: list[str] = []
    hooks = {name: (lambda module, inputs, output, name=name: calls.append(name)) for name in layers}
    with hooked(model, hooks):
        run()
    if not calls:
        return None
    return calls[-1], calls.count(calls[-1])


@contextlib.contextmanager
def stop_after(model: nn.Module, layer: str | None = None, call: int = 1) -> Iterator[None]:
    """End each forward pass with StopForward right after the `call`-th call of `layer` (see
    last_call), so a pass that only feeds hooked activations skips the rest of the model (the
    layers after an early layer of a large model are most of its cost). No layer: no stop."""
    if layer is None:
        yield
        return
    calls = {"count": 0}

    def hook(module, inputs, output):
        calls["count"] += 1
        if calls["count"] == call:
            raise StopForward(layer)

    reset = model.register_forward_pre_hook(lambda module, inputs: calls.update(count=0))
    try:
        with hooked(model, {layer: hook}):
            yield
    finally:
        reset.remove()


def forward_until_stopped(model: nn.Module, inputs: torch.Tensor) -> None:
    """model(inputs), ending quietly where a stop_after hook ends it."""
    try:
        model(inputs)
    except StopForward:
        pass


def _unit_index(units) -> slice | list[int]:
    return slice(None) if units is None else list(units)


def zero_units(units: Sequence[int] | None = None) -> Intervention:
    """Set the given channels (dim 1; all if None) to zero."""
    def change(activation):
        out = activation.clone()
        out[:, _unit_index(units)] = 0
        return out
    return change


def scale_units(factor: float, units: Sequence[int] | None = None) -> Intervention:
    """Multiply the given channels (dim 1) by a factor."""
    def change(activation):
        out = activation.clone()
        out[:, _unit_index(units)] *= factor
        return out
    return change


def replace_units(values: torch.Tensor, units: Sequence[int] | None = None) -> Intervention:
    """Set the given channels to `values` (broadcast over the batch); mean-ablation passes means."""
    def change(activation):
        out = activation.clone()
        out[:, _unit_index(units)] = values.to(activation.device, activation.dtype)
        return out
    return change


def patch_from_donor(model: nn.Module, target: torch.Tensor, donor: torch.Tensor, layer: str,
                     units: Sequence[int] | None = None) -> torch.Tensor:
    """Run `target` with the chosen channels of `layer` copied from the donor's run."""
    _, donor_acts = run_with_cache(model, donor, [layer])
    with torch.no_grad(), intervene(model, {layer: replace_units(donor_acts[layer][:, _unit_index(units)], units)}):
        return model(target)
