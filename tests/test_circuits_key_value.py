"""The key-value reading of a one-hidden-layer network is exact, on a net trained on real digits.

References: the network's own forward pass (logits and hidden activations read through hooks),
and interventions that keep one hidden unit alive at a time (independent of the decomposition).
"""
import copy

import pytest
import torch
from torch import nn

from mechinterp.circuits.key_value import (check_against_forward, explain, key_value_pairs,
                                           top_pairs, wrong_class_pushers)
from mechinterp.hooks import intervene


@pytest.fixture(scope="module")
def trained(train_digits_mlp):
    """A digits MLP (flatten, fc1, relu1, fc2) trained for 300 full-batch steps (about a second)."""
    model, _, _, images, labels = train_digits_mlp(hidden=32, steps=300, lr=0.01)
    return model, images, labels


def test_the_net_learned_the_digits(trained):
    model, images, labels = trained
    accuracy = (model(images).argmax(1) == labels).float().mean()
    assert accuracy > 0.85


def test_sum_of_pairs_equals_forward_pass(trained):
    model, images, _ = trained
    errors = check_against_forward(model, key_value_pairs(model), images, "relu1")
    assert errors["max_logit_error"] < 1e-4
    assert errors["max_activation_error"] < 1e-5


def test_sum_of_pairs_is_exact_in_float64(trained):
    model, images, _ = trained
    model64 = copy.deepcopy(model).double()
    model64.eval()
    pairs = key_value_pairs(model64)
    assert torch.allclose(pairs.logits(images.double()), model64(images.double()), atol=1e-12, rtol=0)


def test_each_pair_equals_the_net_with_only_that_unit_alive(trained):
    model, images, _ = trained
    pairs = key_value_pairs(model)
    x = images[:5]
    with torch.no_grad(), intervene(model, {"relu1": lambda a: torch.zeros_like(a)}):
        bias_only = model(x)
    contributions = pairs.contributions(x)
    for unit in (0, 7, 31):
        keep = torch.zeros(32)
        keep[unit] = 1
        with torch.no_grad(), intervene(model, {"relu1": lambda a: a * keep}):
            alone = model(x)
        assert torch.allclose(alone - bias_only, contributions[:, unit], atol=1e-5)


def test_top_pairs_and_shares_account_for_the_logit(trained):
    model, images, _ = trained
    pairs = key_value_pairs(model)
    x = images[3]
    with torch.no_grad():
        logits = model(x[None])[0]
    winner = int(logits.argmax())
    everything = top_pairs(pairs, x, winner, count=None)
    assert sum(p.contribution for p in everything) + float(pairs.output_bias[winner]) == \
        pytest.approx(float(logits[winner]), abs=1e-4)
    assert sum(abs(p.share) for p in everything) == pytest.approx(1.0, abs=1e-6)
    top = top_pairs(pairs, x, winner, count=3)
    assert [p.contribution for p in top] == sorted((p.contribution for p in everything), reverse=True)[:3]
    assert all(p.activation == max(p.key_dot_input, 0.0) for p in top)


def test_wrong_class_pushers_sum_to_the_margin(trained):
    model, images, labels = trained
    pairs = key_value_pairs(model)
    predictions = model(images).argmax(1)
    wrong = torch.nonzero(predictions != labels).flatten()
    assert len(wrong) > 0, "the test set should hold at least one mistake to explain"
    index = int(wrong[0])
    true, predicted = int(labels[index]), int(predictions[index])
    pushers = wrong_class_pushers(pairs, images[index], true, predicted, count=None)
    with torch.no_grad():
        logits = model(images[index][None])[0]
    margin = float(logits[predicted] - logits[true])
    bias_gap = float(pairs.output_bias[predicted] - pairs.output_bias[true])
    assert margin > 0
    assert sum(p.contribution for p in pushers) + bias_gap == pytest.approx(margin, abs=1e-4)
    assert pushers[0].contribution == max(p.contribution for p in pushers)


def test_explain_keeps_every_step(trained):
    model, images, _ = trained
    pairs = key_value_pairs(model)
    calculation = explain(pairs, images[0])
    assert torch.allclose(calculation.logits, model(images[:1])[0], atol=1e-5)
    assert calculation.predicted == int(model(images[:1]).argmax())
    assert calculation.active_units == [h for h in range(32) if calculation.key_dot_input[h] > 0]
    assert torch.equal(calculation.contributions[calculation.activations == 0],
                       torch.zeros(32 - len(calculation.active_units), 10))


# --- blaming a mistake: one_hidden_layer, silencing_answers, clearest_mistake ------------------

def test_one_hidden_layer_reads_the_layers_from_the_modules_or_the_description():
    from mechinterp.circuits.key_value import one_hidden_layer
    from mechinterp.models.architectures import MLP
    assert one_hidden_layer(MLP(hidden=8)) == ("fc1", "relu1", "fc2")
    plain = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert one_hidden_layer(plain) == ("1", "2", "3")
    deeper = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="exactly one hidden layer"):
        one_hidden_layer(deeper)


def answers_by_arithmetic(pairs, x, units):
    """Predictions with the first 1, 2, ... units silenced, from the pairs alone (no hooks)."""
    logits, terms = pairs.logits(x[None])[0], pairs.contributions(x[None])[0]
    return [int((logits - terms[list(units[:count])].sum(0)).argmax()) for count in range(1, len(units) + 1)]


def test_clearest_mistake_is_the_one_fixed_by_silencing_fewest_pushers(trained):
    from mechinterp.circuits.key_value import clearest_mistake
    model, images, labels = trained
    pairs = key_value_pairs(model)
    mistake = clearest_mistake(model, pairs, images, labels, "relu1", count=4)
    true = int(labels[mistake.index])
    units = [p.unit for p in mistake.pushers]
    assert mistake.answers == answers_by_arithmetic(pairs, images[mistake.index], units)
    assert mistake.needed <= 4 and mistake.answers[mistake.needed - 1] == true
    assert true not in mistake.answers[:mistake.needed - 1]
    predicted = pairs.logits(images).argmax(1)
    for index in torch.nonzero(predicted != labels).flatten().tolist():     # no mistake is fixed sooner
        pushers = wrong_class_pushers(pairs, images[index], int(labels[index]), int(predicted[index]), count=4)
        answers = answers_by_arithmetic(pairs, images[index], [p.unit for p in pushers])
        assert int(labels[index]) not in answers[:mistake.needed - 1]
