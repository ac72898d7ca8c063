"""Plain-torch reference architectures: a one-hidden-layer MLP and three CNN families.

    from mechinterp.models.architectures import MLP, SmallCNN, WideCNN, DeepCNN
    model = SmallCNN(classes=8)
    model.feature_layers      # ["relu1", "relu2", "relu3"]: post-ReLU activations, in depth order
    model.conv_layers         # ["conv1", "conv2", "conv3"]: the nn.Conv2d modules, same order
    model.classifier_layer    # "fc": the final nn.Linear
    model.input_shape         # (3, 32, 32)

Every layer is its own named module (one nn.ReLU per use, no functional calls in forward), so
hooks can read or change any of them by name. No batch norm in the architectures: the zoo trains
with batch norm and folds it into the convs (batchnorm.py), so the weights between two conv
layers are the whole story between their ReLUs, which circuit analysis reads directly.
The CNN families differ in depth, width, kernel size and pooling, which universality
comparisons need:
  SmallCNN  3 conv layers 16-32-64, 5x5 then 3x3 kernels, max pooling
  WideCNN   3 conv layers 32-64-128, a 7x7 stride-2 stem, 5x5, 3x3, average pooling
  DeepCNN   5 conv layers 16-16-32-32-64, 3x3 kernels, strided convolutions instead of pooling
All end in global max pooling (a feature present anywhere counts) and one linear classifier.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn


class MLP(nn.Module):
    """input (flattened) -> fc1 -> relu1 -> fc2: the workshop's one-hidden-layer network."""

    def __init__(self, hidden: int = 32, classes: int = 10, input_shape=(1, 8, 8)):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.fc1 = nn.Linear(math.prod(self.input_shape), hidden)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, classes)
        self.feature_layers = ["relu1"]
        self.conv_layers: list[str] = []
        self.classifier_layer = "fc2"

    def forward(self, x):
        return self.fc2(self.relu1(self.fc1(x.flatten(1))))


@dataclass
class ConvBlock:
    channels: int
    kernel: int
    pool: str | None = None      # "max", "avg" or None: a 2x2 pooling after the ReLU
    stride: int = 1


class ConvNet(nn.Module):
    """conv_i -> relu_i [-> pool_i] blocks, then global pooling and one linear classifier."""

    def __init__(self, blocks: list[ConvBlock], classes: int = 8, input_shape=(3, 32, 32),
                 global_pool: str = "max"):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.conv_layers, self.feature_layers = [], []
        channels = self.input_shape[0]
        for index, block in enumerate(blocks, start=1):
            self._add_block(index, channels, block)
            channels = block.channels
        self.global_pool = nn.AdaptiveAvgPool2d(1) if global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, classes)
        self.classifier_layer = "fc"

    def _add_block(self, index: int, in_channels: int, block: ConvBlock) -> None:
        conv = nn.Conv2d(in_channels, block.channels, block.kernel, stride=block.stride,
                         padding=block.kernel // 2)
        setattr(self, f"conv{index}", conv)
        setattr(self, f"relu{index}", nn.ReLU())
        if block.pool:
            setattr(self, f"pool{index}", nn.MaxPool2d(2) if block.pool == "max" else nn.AvgPool2d(2))
        self.conv_layers.append(f"conv{index}")
        self.feature_layers.append(f"relu{index}")

    def forward(self, x):
        for module in self.children():  # registration order is the forward order
            x = module(x)
        return x


class SmallCNN(ConvNet):
    """Family A: 3 conv layers (width, 2 width, 4 width), 5x5 then 3x3, 2x2 max pooling."""

    def __init__(self, classes: int = 8, width: int = 16, input_shape=(3, 32, 32)):
        blocks = [ConvBlock(width, 5, "max"), ConvBlock(2 * width, 3, "max"),
                  ConvBlock(4 * width, 3)]
        super().__init__(blocks, classes, input_shape, global_pool="max")


class WideCNN(ConvNet):
    """Family W: twice as wide, large kernels: a 7x7 stride-2 stem, 5x5, 3x3, 2x2 average pooling."""

    def __init__(self, classes: int = 8, width: int = 32, input_shape=(3, 32, 32)):
        blocks = [ConvBlock(width, 7, "avg", stride=2), ConvBlock(2 * width, 5, "avg"),
                  ConvBlock(4 * width, 3)]
        super().__init__(blocks, classes, input_shape, global_pool="max")


class DeepCNN(ConvNet):
    """Family D: 5 narrow 3x3 conv layers; stride-2 convolutions downsample instead of pooling."""

    def __init__(self, classes: int = 8, width: int = 16, input_shape=(3, 32, 32)):
        blocks = [ConvBlock(width, 3), ConvBlock(width, 3, stride=2), ConvBlock(2 * width, 3),
                  ConvBlock(2 * width, 3, stride=2), ConvBlock(4 * width, 3)]
        super().__init__(blocks, classes, input_shape, global_pool="max")


ARCHITECTURES = {"MLP": MLP, "SmallCNN": SmallCNN, "WideCNN": WideCNN, "DeepCNN": DeepCNN}
