"""Feature visualisation: what input makes a unit fire? (Olah et al. 2017, Lucid / Lucent in plain torch)

One module per idea, read in this order:
  parameterisations  how an image is described to the optimiser: pixels or a 1/f-scaled Fourier
                     spectrum, decorrelated colour, squashed into [0, 1]
  transforms         random pad / jitter / scale / rotate the image each step (robustness prior)
  objectives         what to maximise: channel, neuron, direction, layer (DeepDream), class logit,
                     diversity; penalties L1, L2, total variation, blur; they compose with + - *
  render             the optimisation loop: a batch where image i maximises objective i
  dataset_examples   the dataset inputs (and receptive-field crops) that most activate each unit
  stimuli            synthetic edges, lines and curves swept over orientation and curvature
  tuning             tuning curves over those stimuli and a finder for edge / curve detector families
  deepdream          amplify a layer starting from a photograph, with octaves and tiling

    from mechinterp.featvis import objectives as obj, render
    result = render.render(model, obj.channel("relu2", range(16)), steps=256)   # all 16 channels
    result.images            # (16, C, H, W) in [0, 1]; image i maximises channel i
"""
