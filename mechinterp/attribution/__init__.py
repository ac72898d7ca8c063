"""Attribution: how much credit an input pixel, a unit or a human concept gets for an output.

One idea per module:
  gradients    saliency, gradient x input, integrated gradients (input and layer) with a
               completeness check, and the two factors of layer IG (activation change, mean
               gradient) that concept attribution projects
  tcav         concept activation vectors, TCAV scores, significance over random concepts, and
               integrated gradients along a concept direction (Kim et al. 2018)

Gradients at a layer are taken through mechinterp.hooks.intervene, so a layer IG and a TCAV
directional derivative are read the same way.
"""
