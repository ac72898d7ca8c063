"""Users' models that are not ours, grey-scale CNNs whose layers are nested in an nn.Sequential
(features.0 ...): grey_nested_cnn, built in code for engine tests (BatchNorm, GELU/SiLU, average
pooling, described as the zoo describes a built model), and GreyNestedCNN, the architecture of
conftest's grey_cnn_zoo entry, trained on mnist-5k for the figure tests."""
from collections import OrderedDict

import torch
from torch import nn

from mechinterp.models.describe import describe_layers


def grey_nested_cnn(size: int = 8, seed: int = 0) -> nn.Module:
    """features.0 conv, .1 BN, .2 GELU, .3 AvgPool, .4 conv, .5 Dropout, .6 SiLU; pool; flat; head."""
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GELU(), nn.AvgPool2d(2),
                             nn.Conv2d(4, 6, 3, padding=1), nn.Dropout(0.1), nn.SiLU())
    model = nn.Sequential(OrderedDict(features=features, pool=nn.AdaptiveAvgPool2d(1),
                                      flat=nn.Flatten(), head=nn.Linear(6, 3)))
    return describe_layers(model, {"input_shape": [1, size, size]}).eval()


class GreyNestedCNN(nn.Module):
    """A grey-scale 28x28 CNN that is not ours: features.0 ... features.7 inside one Sequential."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 12, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
                                      nn.Conv2d(12, 16, 3, padding=1), nn.GELU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))
