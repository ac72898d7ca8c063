"""The layer names a model's figures can read, in forward order, with the shape of each output.

    python -m mechinterp.models.layers shapes-resnet18        # a zoo model (models/zoo.yaml)
    python -m mechinterp.models.layers resnet18 googlenet     # torchvision architectures by name
    python -m mechinterp.models.layers my-tab                 # input_shape: [64]: one 64-vector

    from mechinterp.models.layers import layer_table
    rows = layer_table(model)   # [LayerRow(name="layer1.0.conv1", kind="Conv2d", shape=(64, 8, 8)), ...]

Names are torchvision's own (`layer1`, `layer2.0.conv1`, `features.0.0`, `inception4a`). The
order is that of one forward pass of a zero image of the model's input_shape (torchvision's
3x224x224 when none is declared), with hooks on every module: each module is listed when its
output is made, so a layer comes before the block (a container: `layer1.0`, `features.1`) that
holds it, marked "block output" (a residual shortcut, `layer2.0.downsample`, is marked as the
branch it is). Every module is listed, down to the leaves inside torchvision's
own blocks (`features.0.0` of MobileNetV3's Conv2dNormActivation). The functional steps
(`layer1.0.add`, `flatten`) come from torchvision.models.feature_extraction.get_graph_node_names
(a torch.fx trace) and are marked: hooks, and so feature_layers, ablation and patching, take
module names only. A module the forward pass runs twice (torchvision's blocks reuse one `relu`) is
marked too: read its block instead. The convs of a squeeze-excitation gate (MobileNetV3's
`features.4.block.2.fc1`: a 1x1 conv of the pooled channels that scales them) are marked, being
left out of the default feature_layers (describe.py). layer_table lists a model that cannot run a zero image in module order (each block after its
layers), without shapes; one fx cannot trace, without its functional steps. The command instead
says, in one line, that the model's forward fails on the input it tried and that its zoo entry
should state input_shape. A model of vectors (`input_shape: [D]`) is listed for one D-vector, a
transformer (d_vocab on it or its cfg) for one sequence of n_ctx tokens.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from mechinterp.device import model_device
from mechinterp.hooks import hooked
from mechinterp.models.describe import first_line, forward_error, gate_convs, inputs_text, shape_text
from mechinterp.names import did_you_mean
from mechinterp.transformers.interface import known_size

FUNCTION = "function (not hookable: read the module that contains it)"
# a residual block's shortcut (torchvision's ResNets: downsample): a branch the block adds to its
# main path, not the block's output
SHORTCUTS = ("downsample", "shortcut")
SHORTCUT = "shortcut branch: its block adds it to the main path; read the block for its output"
NOT_RUN = "not run by an eval-mode forward pass"
TORCHVISION_INPUT = (3, 224, 224)


@dataclass
class LayerRow:
    name: str
    kind: str                   # the module's class, or "function"
    note: str = ""              # why a name cannot be read, or is read at its last call
    shape: tuple | None = None  # its output for one image (the last call), when the model ran


def graph_node_names(model: nn.Module) -> list[str]:
    """Eval-mode node names of torchvision's fx trace ([] when fx cannot trace the model)."""
    import inspect
    from torchvision.models.feature_extraction import get_graph_node_names
    inputs = set(inspect.signature(model.forward).parameters)   # fx's nodes for the arguments
    try:
        return [node for node in get_graph_node_names(model)[1] if node not in inputs]
    except Exception:  # noqa: BLE001 - fx cannot trace every model: list the modules alone
        return []


def _called_module(node: str, modules: dict[str, nn.Module]) -> str | None:
    """The module a node calls: fx names a module's second call `relu_1`."""
    if node in modules:
        return node
    base, _, suffix = node.rpartition("_")
    return base if suffix.isdigit() and base in modules else None


def _output_shape(output) -> tuple | None:
    tensor = output[0] if isinstance(output, (tuple, list)) and output else output
    return tuple(tensor.shape[1:]) if isinstance(tensor, torch.Tensor) else None


def example_input(model: nn.Module, input_shape=None) -> torch.Tensor:
    """What the listing runs through the model: one sequence of n_ctx zero tokens for a model of
    tokens (d_vocab on it or its cfg, as the transformer engine reads it), else one zero image (or
    vector) of `input_shape`, the model's own, or torchvision's 3x224x224."""
    device = model_device(model)
    if known_size(model, "d_vocab") is not None:
        return torch.zeros(1, known_size(model, "n_ctx") or 8, dtype=torch.long, device=device)
    shape = input_shape or getattr(model, "input_shape", None) or TORCHVISION_INPUT
    return torch.zeros(1, *shape, device=device)


def example_text(example: torch.Tensor) -> str:
    """"sequence of 16 tokens", "3x32x32 image", "13-feature vector"."""
    if not example.is_floating_point():
        return f"sequence of {example.shape[1]} tokens"
    return inputs_text(tuple(example.shape[1:]), one=True)


def forward_order(model: nn.Module, example: torch.Tensor) -> tuple[dict[str, tuple | None], Counter] | None:
    """({module: output shape of its last call}, in the order their first outputs are made;
    {module: calls}) for the one example (example_input) in eval mode, or None when the model
    cannot run it."""
    shapes, calls, training = {}, Counter(), model.training

    def recorder(name: str):
        def record(module, inputs, output):
            shapes[name] = _output_shape(output)
            calls[name] += 1
        return record
    try:
        with torch.no_grad(), hooked(model, {n: recorder(n) for n, _ in model.named_modules() if n}):
            model.eval()(example)
    except Exception:  # noqa: BLE001 - any model: the listing falls back to module order
        return None
    finally:
        model.train(training)
    return shapes, calls


def _module_order(model: nn.Module, prefix: str = "") -> list[str]:
    """Module names with each block after its layers (the order hooks see outputs)."""
    names = []
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        names += _module_order(child, f"{full}.") + [full]
    return names


def _functions_after(nodes: list[str], modules: dict) -> dict[str | None, list[str]]:
    """{module: the functional fx nodes that run after it, before the next module}: a node
    (`features.3.add`) follows the whole child of its own block (`features.3.block`) that ran last."""
    after, previous = {}, None
    for node in nodes:
        called = _called_module(node, modules)
        if called is not None:
            previous = called
            continue
        scope = node.rpartition(".")[0]
        prefix = f"{scope}." if scope else ""
        inside = previous is not None and previous.startswith(prefix)
        anchor = prefix + previous[len(prefix):].split(".")[0] if inside else previous
        after.setdefault(anchor, []).append(node)
    return after


def layer_table(model: nn.Module, input_shape=None) -> list[LayerRow]:
    """One row per module in forward order (see the module docstring), the functional steps
    between them, and last the modules an eval-mode forward pass never runs."""
    modules = dict(model.named_modules())
    nodes = graph_node_names(model)
    ran = forward_order(model, example_input(model, input_shape))
    shapes, calls = ran or ({name: None for name in _module_order(model)},
                            Counter(_called_module(n, modules) for n in nodes))
    functions, gates = _functions_after(nodes, modules), gate_convs(model)
    rows = [LayerRow(node, "function", FUNCTION) for node in functions.get(None, [])]
    for name, shape in shapes.items():
        rows.append(LayerRow(name, type(modules[name]).__name__, _note(name, modules[name], calls[name],
                                                                      name in gates), shape))
        rows += [LayerRow(node, "function", FUNCTION) for node in functions.get(name, [])]
    unrun = [name for name in _module_order(model) if name not in shapes]
    return rows + [LayerRow(name, type(modules[name]).__name__, NOT_RUN) for name in unrun]


def read_once(row: LayerRow) -> bool:
    """Whether a hook on the row's name reads one output per image: a module the forward pass
    runs exactly once (not a function, a reused module or one never run)."""
    return row.kind != "function" and row.note != NOT_RUN and not row.note.startswith("runs ")


def _note(name: str, module: nn.Module, calls: int, gate: bool) -> str:
    if calls > 1:
        return f"runs {calls} times per forward pass: hooks read its last call"
    if gate:
        return "squeeze-excitation gate: not a default feature layer"
    if name.rsplit(".", 1)[-1] in SHORTCUTS:
        return SHORTCUT
    return "block output" if list(module.children()) else ""


def _model_for(name: str) -> nn.Module:
    """A zoo model's architecture (untrained: names only), else a torchvision model by name."""
    from mechinterp.models.config import read_zoo
    from mechinterp.models.zoo import build_model
    import torchvision.models
    from mechinterp.models.describe import LAYER_FIELDS
    zoo = read_zoo("models/zoo.yaml")
    if name in zoo.problems:
        raise SystemExit(f"layers: {zoo.problem_block(name)}")
    if name in zoo.entries:   # its layer fields left out: they may name what this is to list
        return build_model({k: v for k, v in zoo.entries[name].items() if k not in LAYER_FIELDS})
    if name in torchvision.models.list_models():
        model = torchvision.models.get_model(name, weights=None)
        model.input_shape = TORCHVISION_INPUT
        return model
    raise SystemExit(unknown_model(name, zoo, torchvision.models.list_models()))


def unknown_model(name: str, zoo, torchvision_names: list[str]) -> str:
    """The one line for a name that is neither a zoo model nor a torchvision one: the near names
    of both when there are some, else the zoo's names."""
    near = did_you_mean(name, [*zoo.entries, *torchvision_names])
    names = near or f" ({zoo.shown} names {', '.join(zoo.entries)})"
    return (f"layers: {name!r} is neither a model of {zoo.shown} nor a torchvision model{names}: "
            "give a zoo model's name, or a torchvision architecture's (torchvision.models.list_models())")


def print_rows(rows: list[LayerRow]) -> None:
    """Name, kind, output shape and note in columns as wide as their longest entry."""
    cells = [(row.name, row.kind, shape_text(row.shape) if row.shape else "", row.note) for row in rows]
    widths = [max((len(cell[i]) for cell in cells), default=0) for i in range(3)]
    for cell in cells:
        print("  " + "  ".join(text.ljust(width) for text, width in zip(cell, widths + [0])).rstrip())


def input_problem(name: str, model: nn.Module) -> tuple[torch.Tensor, str | None]:
    """(the example to list the model with, None or the one line saying why it cannot be): its
    example_input (for images, its input_shape, else torchvision's 3x224x224)."""
    declared = getattr(model, "input_shape", None)
    example = example_input(model)
    error = forward_error(model, example)
    if error is None:
        return example, None
    tried = f"a zero {example_text(example)}"
    if not example.is_floating_point():
        return example, (f"layers: {name} ({type(model).__name__}): its forward fails on {tried} "
                         f"({first_line(error)}): check that it takes (batch, n_ctx) token ids")
    if declared is None:
        return example, (f"layers: {name} ({type(model).__name__}) states no input_shape, so {tried} "
                         f"was tried, and its forward fails on it ({first_line(error)}): add "
                         "input_shape: [D] (a model of (N, D) vectors) or [C, H, W] (images) to its "
                         "entry in models/zoo.yaml")
    return example, (f"layers: {name} ({type(model).__name__}): its forward fails on {tried}, its "
                     f"input_shape ({first_line(error)}): set input_shape in its models/zoo.yaml "
                     "entry to what the model takes")


def _header(name: str, model: nn.Module, example: torch.Tensor) -> str:
    assumed = ("" if getattr(model, "input_shape", None) or not example.is_floating_point() else
               ", assumed: its zoo entry states no input_shape; add one to be sure")
    return f"{name} ({type(model).__name__}; output shapes for one {example_text(example)}{assumed}):"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="zoo model names or torchvision model names")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.models:
        model = _model_for(name).eval()
        example, problem = input_problem(name, model)
        if problem:
            print(problem, file=sys.stderr)
            failed += 1
            continue
        print(_header(name, model, example))
        print_rows(layer_table(model, tuple(example.shape[1:])))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
