"""Universality: do different models, or a model and a learning rule with no task, learn the same
features?

One idea per module:
  comparison   many layers of many models at once: layer correspondence both ways, all pairs
  matching     unit matching across models (correlation + optimal assignment vs a shuffled
               baseline) and the layer-correspondence test of Kornblith et al. 2019
  filters      first-layer filters of models; ICA and sparse-coding filters of natural patches
  baselines    the random-weights control (same architecture, fresh initialisation)

The measures themselves (CKA, SVCCA, probes, geometry) live in mechinterp.representations; TCAV
in mechinterp.attribution; adversarial attacks in mechinterp.adversarial.
"""
