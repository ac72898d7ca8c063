"""The layer names a model's figures can read: every module a forward pass runs, in order.

    python -m mechinterp.models.layers shapes-resnet18        # a zoo model (models/zoo.yaml)
    python -m mechinterp.models.layers resnet18 googlenet     # torchvision architectures by name

    from mechinterp.models.layers import layer_table
    rows = layer_table(model)        # [LayerRow(name="layer1.0.conv1", kind="Conv2d", ...), ...]

Names are torchvision's own (`layer1`, `layer2.0.conv1`, `inception4a`). The graph comes from
torchvision.models.feature_extraction.get_graph_node_names, which traces the model with torch.fx;
its nodes include functional steps (`layer1.0.add`, `flatten`) that are not modules: hooks, and so
feature_layers, ablation and patching, take module names only, so those are marked. A module the
forward pass runs twice (torchvision's blocks reuse one `relu`) is marked too: read its block
instead. A model fx cannot trace is listed from model.named_modules().
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass

from torch import nn

HOOKABLE = "module"
FUNCTION = "function (not hookable: read the module that contains it)"


@dataclass
class LayerRow:
    name: str
    kind: str           # the module's class, or "function"
    note: str = ""      # why a name cannot be read, or is read at its last call


def graph_node_names(model: nn.Module) -> list[str]:
    """Eval-mode node names of torchvision's fx trace, or the module names when tracing fails."""
    from torchvision.models.feature_extraction import get_graph_node_names
    try:
        return get_graph_node_names(model)[1]
    except Exception:  # noqa: BLE001 - fx cannot trace every model: fall back to the modules
        return [name for name, _ in model.named_modules() if name]


def _called_module(node: str, modules: dict[str, nn.Module]) -> str | None:
    """The module a node calls: fx names a module's second call `relu_1`."""
    if node in modules:
        return node
    base, _, suffix = node.rpartition("_")
    return base if suffix.isdigit() and base in modules else None


def layer_table(model: nn.Module) -> list[LayerRow]:
    """One row per graph node, then the containers (blocks, stages) whose outputs hooks read."""
    modules = dict(model.named_modules())
    nodes = [n for n in graph_node_names(model) if n != "x"]
    calls = Counter(_called_module(n, modules) for n in nodes)
    rows, seen = [], set()
    for node in nodes:
        called = _called_module(node, modules)
        if called is None:
            rows.append(LayerRow(node, "function", FUNCTION))
        elif called not in seen:
            seen.add(called)
            note = (f"runs {calls[called]} times per forward pass: hooks read its last call"
                    if calls[called] > 1 else "")
            rows.append(LayerRow(called, type(modules[called]).__name__, note))
    containers = [LayerRow(name, type(module).__name__, "block output")
                  for name, module in modules.items() if name and name not in seen
                  and list(module.children())]
    return rows + containers


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
        return torchvision.models.get_model(name, weights=None)
    raise SystemExit(f"layers: {name!r} is neither a model of models/zoo.yaml "
                     f"({', '.join(zoo.entries)}) nor a torchvision model")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="zoo model names or torchvision model names")
    args = parser.parse_args(argv)
    for name in args.models:
        model = _model_for(name).eval()
        print(f"{name} ({type(model).__name__}):")
        for row in layer_table(model):
            print(f"  {row.name:32s} {row.kind:20s} {row.note}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
