"""A one-hidden-layer network read as key-value pairs (the workshop's decomposition).

For logits = W2 ReLU(W1 x + b1) + b2, hidden unit h contributes one term:

    logits = sum_h ReLU(key_h . x + bias_h) * value_h + output_bias

key_h = W1[h] (its input weights, an image the size of the input), value_h = W2[:, h] (its
output weights, one number per class). The key decides how strongly the unit fires on this
input; the value decides which classes that firing votes for. The sum is exact, so every logit
is accounted for by the pairs, and a wrong prediction can be blamed on the pairs that pushed
the wrong class above the right one.

    pairs = key_value_pairs(model, "fc1", "fc2")         # keys (H, D), values (H, C)
    terms = pairs.contributions(x)                       # (N, H, C); sums to the logits
    top = top_pairs(pairs, x[0], logit_class=3, count=5) # largest contributions to logit 3
    blame = wrong_class_pushers(pairs, x[0], true_class=3, predicted_class=8)
    steps = explain(pairs, x[0])                         # the calculation, step by step
    check_against_forward(model, pairs, x, "relu1")      # exact to float tolerance, via hooks
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mechinterp.circuits.units import module_of_type
from mechinterp.hooks import run_with_cache


@dataclass
class KeyValuePairs:
    """The hidden units of a one-hidden-layer network as (key, key bias, value) triples."""
    keys: torch.Tensor           # (H, D): input weights of each hidden unit
    key_biases: torch.Tensor     # (H,)
    values: torch.Tensor         # (H, C): output weights of each hidden unit, one per class
    output_bias: torch.Tensor    # (C,)

    @property
    def count(self) -> int:
        return self.keys.shape[0]

    def flatten(self, x: torch.Tensor, single: bool = False) -> torch.Tensor:
        """A batch of inputs as (N, D) rows, or one input (single=True) as one row."""
        x = x.detach().to(self.keys.device, self.keys.dtype)
        rows = x.reshape(1, -1) if single or x.dim() == 1 else x.flatten(1)
        if rows.shape[1] != self.keys.shape[1]:
            raise ValueError(f"inputs have {rows.shape[1]} values each but the keys have "
                             f"{self.keys.shape[1]}; pass images of the network's input size")
        return rows

    def key_activations(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU(key . x + bias) for every input and pair, (N, H)."""
        return torch.relu(self.flatten(x) @ self.keys.T + self.key_biases)

    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        """Each pair's contribution to each logit, (N, H, C)."""
        return self.key_activations(x)[:, :, None] * self.values[None]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network's logits rebuilt as the sum of the pairs plus the output bias, (N, C)."""
        return self.contributions(x).sum(1) + self.output_bias


def key_value_pairs(model: nn.Module, first: str = "fc1", second: str = "fc2") -> KeyValuePairs:
    """Read the pairs from the two Linear layers of a one-hidden-layer network."""
    hidden = module_of_type(model, first, nn.Linear)
    output = module_of_type(model, second, nn.Linear)
    if hidden.out_features != output.in_features:
        raise ValueError(f"{first!r} has {hidden.out_features} outputs but {second!r} takes "
                         f"{output.in_features} inputs: they are not one hidden layer apart")
    zeros = lambda n: torch.zeros(n, device=hidden.weight.device, dtype=hidden.weight.dtype)
    return KeyValuePairs(
        hidden.weight.detach().clone(),
        hidden.bias.detach().clone() if hidden.bias is not None else zeros(hidden.out_features),
        output.weight.detach().T.clone(),
        output.bias.detach().clone() if output.bias is not None else zeros(output.out_features))


def check_against_forward(model: nn.Module, pairs: KeyValuePairs, x: torch.Tensor,
                          hidden_layer: str = "relu1") -> dict[str, float]:
    """Largest differences between the decomposition and the model's own forward pass:
    the logits, and the hidden activations read through hooks."""
    logits, cache = run_with_cache(model, x, [hidden_layer])
    hidden = cache[hidden_layer].flatten(1)
    return {"max_logit_error": float((pairs.logits(x) - logits).abs().max()),
            "max_activation_error": float((pairs.key_activations(x) - hidden).abs().max())}


@dataclass
class PairContribution:
    """One pair's part in one input's logits."""
    unit: int
    key_dot_input: float      # key . x + bias, before the ReLU
    activation: float         # after the ReLU
    contribution: float       # activation * value[class] (or the margin it adds)
    share: float              # contribution / sum over pairs of |contribution|

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _single(pairs: KeyValuePairs, x: torch.Tensor) -> torch.Tensor:
    """One input (any shape holding D values, e.g. (1, 8, 8) or (1, 1, 8, 8)) as a (1, D) row."""
    return pairs.flatten(x, single=True)


def _ranked(pairs: KeyValuePairs, x: torch.Tensor, per_pair: torch.Tensor,
            count: int | None, order: str = "largest") -> list[PairContribution]:
    pre = (_single(pairs, x) @ pairs.keys.T + pairs.key_biases)[0]
    if order not in ("largest", "absolute"):
        raise ValueError(f"order must be 'largest' or 'absolute', got {order!r}")
    total = per_pair.abs().sum().clamp(min=1e-12)
    ranking = (per_pair.abs() if order == "absolute" else per_pair).argsort(descending=True)
    return [PairContribution(int(h), float(pre[h]), float(torch.relu(pre[h])),
                             float(per_pair[h]), float(per_pair[h] / total))
            for h in ranking[:count]]


def top_pairs(pairs: KeyValuePairs, x: torch.Tensor, logit_class: int,
              count: int | None = 5, order: str = "largest") -> list[PairContribution]:
    """The pairs contributing most to one logit of one input.

    order="largest" ranks by signed contribution (the biggest pushes up first), "absolute" by
    size either way. Shares are signed and their absolute values sum to 1 over all pairs."""
    _check_class(pairs, logit_class)
    per_pair = pairs.contributions(_single(pairs, x))[0, :, logit_class]
    return _ranked(pairs, x, per_pair, count, order)


def wrong_class_pushers(pairs: KeyValuePairs, x: torch.Tensor, true_class: int,
                        predicted_class: int, count: int | None = 5) -> list[PairContribution]:
    """The pairs that most raised logit[predicted] above logit[true] for this input.

    Each contribution is activation * (value[predicted] - value[true]); over all pairs these
    sum, with the bias difference, to the margin logit[predicted] - logit[true]."""
    _check_class(pairs, true_class)
    _check_class(pairs, predicted_class)
    terms = pairs.contributions(_single(pairs, x))[0]
    return _ranked(pairs, x, terms[:, predicted_class] - terms[:, true_class], count)


def _check_class(pairs: KeyValuePairs, index: int) -> None:
    classes = pairs.values.shape[1]
    if not 0 <= index < classes:
        raise ValueError(f"class {index} is out of range: the network has {classes} classes")


@dataclass
class Calculation:
    """The key-value calculation for one input, every intermediate kept (the workshop's table)."""
    key_dot_input: torch.Tensor   # (H,) key . x + bias
    activations: torch.Tensor     # (H,) after ReLU
    contributions: torch.Tensor   # (H, C) activation * value
    output_bias: torch.Tensor     # (C,)
    logits: torch.Tensor          # (C,) = contributions.sum(0) + output_bias
    predicted: int
    active_units: list[int]       # units whose ReLU let anything through


def explain(pairs: KeyValuePairs, x: torch.Tensor) -> Calculation:
    """Every step from one input to its logits, through the key-value pairs."""
    row = _single(pairs, x)
    pre = (row @ pairs.keys.T + pairs.key_biases)[0]
    activations = torch.relu(pre)
    contributions = activations[:, None] * pairs.values
    logits = contributions.sum(0) + pairs.output_bias
    active = [int(h) for h in torch.nonzero(activations > 0).flatten()]
    return Calculation(pre, activations, contributions, pairs.output_bias, logits,
                       int(logits.argmax()), active)


# --- blaming a mistake on its pairs ------------------------------------------------------------

def one_hidden_layer(model: nn.Module) -> tuple[str, str, str]:
    """(first Linear, hidden activation layer, output Linear) of a one-hidden-layer network, from
    its description (feature_layers, classifier_layer) where it has one, else from its modules."""
    from mechinterp.hooks import layer_names
    linears = layer_names(model, (nn.Linear,))
    if len(linears) != 2:
        raise ValueError(f"{type(model).__name__} has {len(linears)} Linear layers {linears}; "
                         "the key-value reading needs a network with exactly one hidden layer")
    hidden = (getattr(model, "feature_layers", None) or layer_names(model, (nn.ReLU,)) or [linears[0]])[0]
    return linears[0], hidden, getattr(model, "classifier_layer", None) or linears[1]


def silencing_answers(model: nn.Module, x: torch.Tensor, hidden_layer: str, units) -> list[int]:
    """The model's prediction for one input after zeroing the first 1, 2, ... of `units` in
    `hidden_layer` (the test of a story that blames those units)."""
    from mechinterp.hooks import intervene, zero_units
    answers = []
    for count in range(1, len(units) + 1):
        with torch.no_grad(), intervene(model, {hidden_layer: zero_units(list(units[:count]))}):
            answers.append(int(model(x[None]).argmax(1)))
    return answers


@dataclass
class Mistake:
    index: int                       # the input's position in the batch
    pushers: list[PairContribution]  # the pairs that pushed the wrong class above the true one
    answers: list[int]               # predictions after silencing the first 1, 2, ... pushers
    needed: int                      # pushers silenced before the answer is right (count + 1: never)
    margin: float                    # wrong logit minus true logit


def clearest_mistake(model: nn.Module, pairs: KeyValuePairs, images: torch.Tensor,
                     labels: torch.Tensor, hidden_layer: str, count: int) -> Mistake:
    """The misclassified input fixed by silencing the fewest of its top `count` pushers (ties:
    the one with the largest margin)."""
    logits = pairs.logits(images)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    best = None
    for index in torch.nonzero(predicted != labels).flatten().tolist():
        true, guess = int(labels[index]), int(predicted[index])
        pushers = wrong_class_pushers(pairs, images[index], true, guess, count=count)
        answers = silencing_answers(model, images[index], hidden_layer, [p.unit for p in pushers])
        needed = next((k + 1 for k, answer in enumerate(answers) if answer == true), count + 1)
        mistake = Mistake(index, pushers, answers, needed, float(logits[index, guess] - logits[index, true]))
        if best is None or (mistake.needed, -mistake.margin) < (best.needed, -best.margin):
            best = mistake
    if best is None:
        raise ValueError("the model classifies every input correctly: there is no mistake to explain")
    return best
