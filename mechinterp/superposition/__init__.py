"""Superposition and dictionary learning: the toy models of Elhage et al. (2022) and sparse autoencoders.

One idea per module:
  toy_models     many toy models h = Wx, x' = ReLU(WᵀWx + b) trained at once (an instances dimension)
  measures       WᵀW, feature norms, superposition, feature dimensionality, dimensions per feature, loss
  experiments    the paper's experiments: intro sweep (n=5, m=2), n=2/m=1 phase diagram, uniform geometry
  polysemantic   class purity and entropy of each unit's top inputs; find polysemantic units
  sae            ReLU (L1) and TopK sparse autoencoders and their losses
  sae_training   train an SAE on streamed activation batches, with dead-latent handling
  sae_metrics    reconstruction MSE, explained variance, L0, dead fraction, accuracy with the SAE spliced in
  synthetic      activations made from a known sparse dictionary: the ground truth an SAE should recover
"""
