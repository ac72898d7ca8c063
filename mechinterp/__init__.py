"""mechinterp: a compact mechanistic-interpretability engine over plain PyTorch models.

The folder listing is the architecture; each module holds one idea:
  hooks        read and change activations of named modules (context managers)
  activations  a layer's activations over a dataset, batch by batch: features (one row per
               image) or vectors (one row per image and position)
  device       pick cuda / mps / cpu, seed every generator, a model's device, CPU threads
  examples     picking inputs and units: correct examples of a class, class-selective units
  adversarial  FGSM and PGD attacks, success against epsilon, what an attack changes read through
               a sparse autoencoder, adversarial paths between classes
  small_fits   scikit-learn fits on small matrices with single-threaded BLAS
  names        "did you mean": the nearest known names for a message
  data/        offline datasets (procedural shapes, sklearn digits, skimage patches, user files)
  models/      reference architectures, the zoo (train, checkpoint, provenance), safe loading
  featvis/     feature visualisation (parameterisations, transforms, objectives, render, ...)
  superposition/  toy models of superposition, their measures, sparse autoencoders
  attribution/    saliency, integrated gradients (input and layer), TCAV and concept attribution
  representations/  what a layer holds: CKA / SVCCA / mutual k-NN similarity, probes, geometry
  circuits/    weights between features, ablation, patching, key-value reading
  universality/   do models agree: layer correspondence, unit matching, first-layer filters

The engine knows nothing about slides; figure scripts in figures_src/ drive it.
"""
