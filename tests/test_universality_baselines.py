"""The random-weights control (mechinterp.universality.baselines.randomly_initialised)."""
import torch
from torch import nn

from mechinterp.universality.baselines import randomly_initialised


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def test_fresh_weights_are_pytorchs_default_initialisation_from_the_seed():
    trained = small_net()
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.fill_(0.5)                      # "trained": far from any initialisation
    torch.manual_seed(7)
    reference = small_net()                           # built fresh under the same seed
    fresh = randomly_initialised(trained, seed=7)
    for (name, got), (_, want) in zip(fresh.named_parameters(), reference.named_parameters()):
        assert torch.equal(got, want), name
    assert all(bool((p == 0.5).all()) for p in trained.parameters())     # the original untouched
    assert not fresh.training


def test_the_global_random_stream_is_left_where_it_was():
    model = small_net()
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    randomly_initialised(model, seed=0)
    assert torch.equal(torch.rand(5), expected)


def test_different_seeds_give_different_weights():
    model = small_net()
    first, second = randomly_initialised(model, 0), randomly_initialised(model, 1)
    assert not torch.equal(first[0].weight, second[0].weight)
    assert torch.equal(first[0].weight, randomly_initialised(model, 0)[0].weight)
