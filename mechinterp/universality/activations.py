"""Moved to mechinterp.activations; this re-export keeps the old import path working.

It stays only while branches written against the old path (issue 12's analysis move) are merged;
import from mechinterp.activations in new code, then delete this file.
"""
from mechinterp.activations import (Pool, as_features, layer_features, predictions,
                                    representation_layers, stream_layer_features)

__all__ = ["Pool", "as_features", "layer_features", "predictions", "representation_layers",
           "stream_layer_features"]
