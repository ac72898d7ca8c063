"""Models: reference architectures, the training loop, checkpoints and the zoo.

  architectures  MLP, SmallCNN, WideCNN, DeepCNN (named layers, layer descriptions)
  training       the one training loop (Adam, one-cycle), accuracy and per-class evaluation
  checkpoints    atomic saving, loading without running code, file hashes
  config         models/zoo.yaml read without torch: entries, their lines, each entry's problems
  fields         the fields a zoo entry may have and what each must hold (checked on reading)
  describe       a built model's layer descriptions, checked against its modules and a trial image
  inputs         what a model is made of (entry, dataset, checkpoint, architecture source): the one
                 definition meta.json, the zoo's staleness and the figures' staleness share
  sources        content hashes of files and values; the source files a module imports
  zoo            train or import the stale models, one error block per broken entry, load_model, load_meta
"""
