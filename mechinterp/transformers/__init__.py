"""Circuits in small attention-only transformers: induction heads found, measured and cut.

One idea per file:
  model.py             AttentionOnlyTransformer, with TransformerLens's parameter and hook names
  interface.py         what the engine needs of any transformer: sizes, heads, sequence checks
  sequences.py         repeated-random-token data
  training.py          training on it, with snapshots along the way (the phase change)
  snapshots.py         a zoo model's snapshots, saved next to its checkpoint and loaded back
  patterns.py          attention patterns through the engine's hooks
  detectors.py         previous-token, duplicate-token, induction and copying scores per head
  circuits.py          full QK and OV circuits
  composition.py       Q-, K- and V-composition scores and their random-matrix baseline
  icl.py               the in-context-learning score and the loss on repeated tokens
  phase_change.py      the phase change read off snapshots: loss and induction score per step
  logit_attribution.py direct logit attribution per head
  ablation.py          zero, mean and resample ablation of heads
  patching.py          activation patching of head outputs, clean into corrupted

After Elhage et al. (2021) and Olsson et al. (2022).
"""
