"""Users' models that are not image CNNs, as a superposition researcher brings them: TabMLP, an
MLP with no conv layer (act1, act2, head; it flattens its input, so the digits' 1x8x8 images are its
64 inputs), and ToySuperposition, a toy model of superposition keeping the paper's m x n `W`.
VECTOR_ZOO is their zoo.yaml: the MLP trained here on digits (seconds), the toy model imported
from a checkpoint that toy_checkpoint writes with a known geometry (conftest's vector_zoo)."""
import torch
from torch import nn


class TabMLP(nn.Module):
    """64 -> hidden -> hidden -> classes, every layer a vector: nothing spatial to crop or convolve."""

    def __init__(self, n_in: int = 64, hidden: int = 16, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.head(self.act2(self.fc2(self.act1(self.fc1(x.flatten(1))))))


class ToySuperposition(nn.Module):
    """x -> ReLU(WᵀW x + b) with W of the paper's shape (n_hidden, n_features)."""

    def __init__(self, n_features: int = 6, n_hidden: int = 2):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(n_hidden, n_features))
        self.b = nn.Parameter(torch.zeros(n_features))
        self.hidden = nn.Identity()

    def forward(self, x):
        return torch.relu(self.hidden(x.flatten(1) @ self.W.T) @ self.W + self.b)


def toy_checkpoint(path) -> None:
    """6 features in 2 dimensions: features 0-3 two antipodal pairs of unit vectors (a square),
    features 4 and 5 not represented (zero columns)."""
    model = ToySuperposition(6, 2)
    with torch.no_grad():
        model.W[:, :4] = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    torch.save(model.state_dict(), path)


VECTOR_ZOO = """models:
  tab-mlp:
    architecture: "tests.vector_models:TabMLP"
    dataset: digits
    input_shape: [1, 8, 8]
    feature_layers: [act1, act2]
    classifier_layer: head
    seed: 0
    epochs: 8
    batch_size: 64
    learning_rate: 0.01
  wine-mlp:
    architecture: "tests.vector_models:TabMLP"
    kwargs: {{n_in: 13, hidden: 16, classes: 3}}
    dataset: wine
    input_shape: [13]
    feature_layers: [act1, act2]
    classifier_layer: head
    seed: 0
    epochs: 30
    batch_size: 32
    learning_rate: 0.01
  toy:
    architecture: "tests.vector_models:ToySuperposition"
    kwargs: {{n_features: 6, n_hidden: 2}}
    checkpoint: {toy}
    feature_layers: [hidden]
"""
