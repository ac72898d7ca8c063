"""A user's model that is not ours, for engine tests: a small grey-scale CNN whose layers are
nested in an nn.Sequential (features.0 ...), with BatchNorm, GELU/SiLU and average pooling, and
described (feature_layers, input_shape ...) as the zoo describes a built model."""
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
