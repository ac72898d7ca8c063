"""Circuits: how features are wired together and tested causally.

One idea per module; the folder listing is the architecture:
  weights      kernels between units of two conv layers (positive / negative parts), expanded
               weights through linear steps, a unit's strongest inputs, NMF of a layer's weights
  ablation     zero / mean / resample ablation of units, effect sizes on logits, loss, accuracy
  patching     activation patching from a donor to a target input, per unit and per layer
  key_value    a one-hidden-layer network read exactly as a sum of key-value pairs

Every activation is read or changed through mechinterp.hooks (capture / intervene). Gradient
attribution (saliency, integrated gradients) lives in mechinterp.attribution.
"""
