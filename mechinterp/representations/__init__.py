"""Representations: what a layer's activations hold, read from the activations alone.

One idea per module:
  similarity   linear / RBF CKA (biased and debiased HSIC), SVCCA, mutual k-NN alignment,
               streamed linear CKA, layer-by-layer similarity matrices between two models
  probes       linear probes per layer against chance and a shuffled-label control task
  geometry     PCA spectrum and intrinsic dimension, 2-D embeddings, clustering purity,
               interpolation paths between inputs

These are general tools; universality/ uses them to ask whether different models agree.
"""
