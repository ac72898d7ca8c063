"""Models: reference architectures, the training loop, checkpoints and the zoo.

  architectures  MLP, SmallCNN, WideCNN, DeepCNN (named layers, layer descriptions)
  training       the one training loop (Adam, one-cycle), accuracy and per-class evaluation
  checkpoints    atomic saving, loading without running code, file hashes
  zoo            models/zoo.yaml: train or import, staleness, load_model, load_meta, model_hashes
"""
