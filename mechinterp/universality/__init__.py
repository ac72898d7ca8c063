"""Universality and representations: compare what different models compute, and read it out.

One module per idea:
  similarity    linear / RBF CKA (biased and debiased HSIC), SVCCA, mutual k-NN alignment,
                streamed linear CKA, layer-by-layer similarity matrices between two models
  comparison    many layers of many models at once: layer correspondence both ways, all pairs
  baselines     the random-weights control (same architecture, fresh initialisation)
  matching      unit matching across models (correlation + optimal assignment vs a shuffled
                baseline) and the layer-correspondence test of Kornblith et al. 2019
  filters       first-layer filters of models; ICA and sparse-coding filters of natural patches
  probes        linear probes per layer against chance and a shuffled-label control task
  tcav          concept activation vectors, TCAV scores, significance over random concepts
  geometry      PCA spectrum and intrinsic dimension, 2-D embeddings, clustering purity,
                interpolation paths between inputs
  adversarial   FGSM and PGD (L-inf, L2), success against epsilon, the activation change read
                through a sparse autoencoder, adversarial paths between classes
"""
