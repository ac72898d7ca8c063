"""TransformerLens side of bench_transformers: our weights in a HookedTransformer, and training speed.

    REFERENCE_PYTHON -m bench.transformerlens_reference WEIGHTS CONFIG.json TOKENS OUT   (safetensors files)

Runs in the interpreter that has transformer_lens==3.5.1 (the `reference` extra: the main venv, or
.venv-reference when installing it there would change the pinned torch or numpy; see the Makefile).
It loads our trained weights into HookedTransformerConfig(attn_only=True, normalization_type=None,
...) with no tokenizer, and writes TransformerLens's logits, attention patterns and
all_composition_scores on the given tokens; then it trains our AttentionOnlyTransformer and a fresh
HookedTransformer of the same configuration on the same batches, alternating in one process so both
see the same load, and writes both rates. Nothing here reaches the network.
"""
from __future__ import annotations

import json
import sys
import time

import torch
from safetensors.torch import load_file, save_file

from mechinterp.transformers.model import AttentionOnlyTransformer
from mechinterp.transformers.sequences import repeated_segments
from mechinterp.transformers.training import next_token_loss


def hooked_transformer(config: dict):
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    cfg = HookedTransformerConfig(n_layers=config["n_layers"], d_model=config["d_model"],
                                  n_ctx=config["n_ctx"], d_head=config["d_head"],
                                  n_heads=config["n_heads"], d_vocab=config["d_vocab"],
                                  attn_only=True, normalization_type=None, act_fn=None,
                                  positional_embedding_type="standard", seed=0, device="cpu")
    return HookedTransformer(cfg)


def reference_outputs(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """TransformerLens's logits, patterns and composition scores for our weights."""
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    outputs = {"logits": logits}
    for layer in range(model.cfg.n_layers):
        outputs[f"pattern{layer}"] = cache[f"blocks.{layer}.attn.hook_pattern"]
    for mode in ("Q", "K", "V"):
        outputs[f"composition_{mode}"] = model.all_composition_scores(mode).detach()
    return outputs


def train_steps(model, steps: int, seed: int, batch_size: int, n_ctx: int, d_vocab: int) -> float:
    """Seconds for `steps` Adam steps on repeated segments (the zoo's training step)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        tokens = repeated_segments(batch_size, n_ctx, d_vocab, data)
        loss = next_token_loss(model(tokens), tokens).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def training_rates(config: dict, rounds: int = 5, steps: int = 60, batch_size: int = 32) -> dict:
    """Steps per second of ours and TransformerLens's, alternating rounds (medians)."""
    ours = AttentionOnlyTransformer(**{k: config[k] for k in ("d_vocab", "n_ctx", "d_model",
                                                              "n_heads", "n_layers", "d_head")})
    theirs = hooked_transformer(config)
    args = (batch_size, config["n_ctx"], config["d_vocab"])
    train_steps(ours, 5, 0, *args), train_steps(theirs, 5, 0, *args)   # warm-up
    times = {"ours": [], "transformerlens": []}
    for round_index in range(rounds):
        times["ours"].append(train_steps(ours, steps, round_index, *args))
        times["transformerlens"].append(train_steps(theirs, steps, round_index, *args))
    return {name: steps / sorted(values)[len(values) // 2] for name, values in times.items()}


def main(argv: list[str]) -> int:
    weights_path, config_path, tokens_path, out_path = argv
    torch.set_num_threads(1)
    config = json.loads(open(config_path).read())
    model = hooked_transformer(config)
    missing, unexpected = model.load_state_dict(load_file(weights_path), strict=False)
    if unexpected or any(not key.endswith(("mask", "IGNORE")) for key in missing):
        raise SystemExit(f"weights do not fit HookedTransformer: missing {missing}, unexpected {unexpected}")
    outputs = reference_outputs(model.eval(), load_file(tokens_path)["tokens"])
    rates = training_rates(config)
    save_file({k: v.contiguous() for k, v in outputs.items()}, out_path,
              metadata={"rates": json.dumps(rates), "torch": torch.__version__,
                        "transformer_lens": __import__("importlib.metadata").metadata.version("transformer_lens")})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
