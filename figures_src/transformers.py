"""Transformer circuits figures: induction heads in the zoo's attention-only models.

transformers/attention_patterns     a previous-token head and an induction head on one [r, r]
transformers/phase_change           loss on repeated tokens and the best induction score against
                                    training step, 2 layers against the 1-layer control
transformers/composition            Q/K/V-composition of layer-0 into layer-1 heads vs random
transformers/induction_circuits     the induction head's OV (copying) and QK (prefix matching)
transformers/head_ablation          repeated-token loss with each head, and each group of heads,
                                    cut; activation patching per head
transformers/induction_universality the best induction score of every seed

Every figure reads the models its FIGURES entry declares, the first one for a single-model figure
(phase_change: the two-layer model, then the one-layer control), so a copy of this script whose
"models" name the speaker's own transformer shows that model. Heads are named "layer.head"
("0.2", "1.3"). Evaluation sequences are `half` random tokens
repeated once (mechinterp.transformers.sequences), drawn from a generator seeded by `data_seed`.
"""
import math

import matplotlib.pyplot as plt
import torch

from figures_src.plotting import SIGNED, heat_map, legend_outside
from mechinterp.transformers.interface import all_heads, known_size, size

TWO_LAYER = "attn-only-2l"
ONE_LAYER = "attn-only-1l"
SEEDS = [TWO_LAYER, "attn-only-2l-seed1", "attn-only-2l-seed2"]
EVAL = {"batch": 64, "half": 20, "data_seed": 1234}

FIGURES = {
    "transformers/attention_patterns": {
        "make": "make_attention_patterns",
        "models": [TWO_LAYER],
        "params": {**EVAL, "shown_half": 12},
        "outputs": ["png"],
    },
    "transformers/phase_change": {
        "make": "make_phase_change",
        "models": [TWO_LAYER, ONE_LAYER],
        "params": {"quick": {**EVAL, "batch": 32, "window": 250},
                   "full": {**EVAL, "window": 250}},
        "outputs": ["png"],
    },
    "transformers/composition": {
        "make": "make_composition",
        "models": [TWO_LAYER],
        "params": {"quick": {**EVAL, "baseline_samples": 100},
                   "full": {**EVAL, "baseline_samples": 1000}},
        "outputs": ["png"],
    },
    "transformers/induction_circuits": {
        "make": "make_induction_circuits",
        "models": [TWO_LAYER],
        "params": EVAL,
        "outputs": ["png"],
    },
    "transformers/head_ablation": {
        "make": "make_head_ablation",
        "models": [TWO_LAYER],
        "params": {"quick": {**EVAL, "method": "mean", "threshold": 0.3},
                   "full": {**EVAL, "batch": 256, "method": "mean", "threshold": 0.3}},
        "outputs": ["png"],
    },
    "transformers/induction_universality": {
        "make": "make_induction_universality",
        "models": SEEDS,
        "params": {"quick": {**EVAL, "seeds": 1},           # the first declared model alone
                   "full": {**EVAL, "seeds": 3}},
        "outputs": ["png"],
    },
}


def head_name(layer: int, head: int) -> str:
    return f"{layer}.{head}"


def eval_tokens(ctx, model, batch=None, half_param="half", seed_offset=0):
    """A batch of [r, r] sequences of ctx.params[half_param] tokens repeated (the same for every
    figure with the same params); a half too long for the model names the param to set."""
    from mechinterp.transformers.sequences import repeated_random_tokens
    half, n_ctx = ctx.params[half_param], known_size(model, "n_ctx")
    if n_ctx is not None and 2 * half > n_ctx:
        raise ValueError(f"param {half_param}={half} makes [r, r] sequences of {2 * half} tokens, longer than "
                         f"{type(model).__name__}'s n_ctx of {n_ctx}: set {half_param} <= {n_ctx // 2} in the "
                         f"params of {ctx.figure_id}'s FIGURES entry")
    generator = torch.Generator().manual_seed(ctx.params["data_seed"] + seed_offset)
    return repeated_random_tokens(batch or ctx.params["batch"], half, size(model, "d_vocab"),
                                  generator).to(ctx.device)


def key_heads(model, tokens, half):
    """(previous-token head of layer 0, induction head of the last layer, their score tables)."""
    from mechinterp.transformers.detectors import induction_scores, previous_token_scores
    previous, induction = previous_token_scores(model, tokens), induction_scores(model, tokens, half)
    last = size(model, "n_layers") - 1
    return ((0, int(previous[0].argmax())), (last, int(induction[last].argmax())),
            previous.cpu(), induction.cpu())


# --- attention patterns ---------------------------------------------------------------------------

def make_attention_patterns(ctx):
    from mechinterp.transformers.patterns import attention_patterns
    name, model = ctx.first_model()
    half = ctx.params["half"]
    tokens = eval_tokens(ctx, model)
    prev_head, ind_head, previous, induction = key_heads(model, tokens, half)
    shown = eval_tokens(ctx, model, 1, "shown_half")
    patterns = attention_patterns(model, shown)
    fig = draw_patterns(patterns, prev_head, ind_head, shown[0].tolist(), previous, induction)
    ctx.save(fig)
    return {"model": name, "half": half, "sequences": len(tokens),
            "previous_token_head": head_name(*prev_head), "induction_head": head_name(*ind_head),
            "previous_token_score": float(previous[prev_head]),
            "induction_score": float(induction[ind_head]),
            "previous_token_scores": previous.tolist(), "induction_scores": induction.tolist(),
            "shown_tokens": shown[0].tolist()}


def draw_patterns(patterns, prev_head, ind_head, tokens, previous, induction):
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    labels = [str(t) for t in tokens]
    for axis, (layer, head), kind, score in ((axes[0], prev_head, "previous-token", previous),
                                              (axes[1], ind_head, "induction", induction)):
        axis.imshow(patterns[layer][0, head].cpu().numpy(), cmap="Blues", vmin=0, vmax=1)
        axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
        axis.set_yticks(range(len(labels)), labels, fontsize=8)
        axis.set_xlabel("key token")
        axis.set_ylabel("query token")
        axis.set_title(f"head {head_name(layer, head)}: {kind}\nscore {float(score[layer, head]):.2f}")
    fig.tight_layout()
    return fig


# --- phase change ---------------------------------------------------------------------------------

def model_curve(ctx, name):
    """[(step, repeated-token loss, best last-layer induction score)] over the model's snapshots."""
    from mechinterp.transformers.phase_change import snapshot_curve
    from mechinterp.transformers.snapshots import snapshot_models
    model = ctx.model(name)      # declared, and built: a clear error otherwise
    return snapshot_curve(snapshot_models(name, ctx.models_dir, ctx.device), eval_tokens(ctx, model),
                          ctx.params["half"])


def make_phase_change(ctx):
    from mechinterp.transformers.icl import icl_positions, icl_score
    from mechinterp.transformers.phase_change import phase_change_step, value_near
    from mechinterp.transformers.sequences import repeated_segments
    two_layers, one_layer = ctx.declared_models[:2]       # the model with induction heads, the one without
    two, one = model_curve(ctx, two_layers), model_curve(ctx, one_layer)
    step, window = phase_change_step(two), ctx.params["window"]
    icl = {}
    for name in (two_layers, one_layer):
        model = ctx.model(name)
        tokens = repeated_segments(ctx.params["batch"], size(model, "n_ctx"), size(model, "d_vocab"),
                                   torch.Generator().manual_seed(ctx.params["data_seed"])).to(ctx.device)
        icl[name] = icl_score(model, tokens, *icl_positions(size(model, "n_ctx")))
    fig = draw_phase_change(two, one, step)
    ctx.save(fig)
    return {"phase_change_step": step, "window": window,
            "induction_score_2l": two[-1][2], "induction_score_1l": max(s for _, _, s in one),
            "repeated_loss_before": value_near(two, step - window),
            "repeated_loss_after": value_near(two, step + window),
            "repeated_loss_final_2l": two[-1][1], "repeated_loss_final_1l": one[-1][1],
            "chance_loss": math.log(size(ctx.model(two_layers), "d_vocab")),
            "icl_score_2l": icl[two_layers], "icl_score_1l": icl[one_layer],
            "icl_positions": {name: list(icl_positions(size(ctx.model(name), "n_ctx"))) for name in (two_layers, one_layer)},
            "curve_2l": [list(row) for row in two], "curve_1l": [list(row) for row in one],
            "notes": {"curve": "[step, repeated-token loss (nats), best last-layer induction score]",
                      "phase_change_step": "first snapshot where the 2-layer score is half way "
                                           "from its first to its last value",
                      "repeated_loss_before/after": "2-layer loss at phase_change_step -/+ window",
                      "icl_score": "loss at the late position minus at the early one (icl_positions)"}}


def draw_phase_change(two, one, step):
    fig, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(11, 4.8))
    for curve, label, colour in ((two, "2 layers", "#B2182B"), (one, "1 layer", "#2166AC")):
        steps = [row[0] for row in curve]
        loss_axis.plot(steps, [row[1] for row in curve], color=colour, label=label)
        score_axis.plot(steps, [row[2] for row in curve], color=colour, label=label)
    for axis in (loss_axis, score_axis):
        axis.axvline(step, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel("training step")
        axis.legend()
    loss_axis.set_ylabel("loss on repeated tokens (nats)")
    score_axis.set_ylabel("best induction score")
    score_axis.set_ylim(0, 1)
    fig.tight_layout()
    return fig


# --- composition ----------------------------------------------------------------------------------

def make_composition(ctx):
    from mechinterp.transformers.circuits import head_shape
    from mechinterp.transformers.composition import MODES, all_composition_scores, random_composition_baseline
    name, model = ctx.first_model()
    tokens = eval_tokens(ctx, model)
    prev_head, ind_head, _, _ = key_heads(model, tokens, ctx.params["half"])
    scores = {mode: all_composition_scores(model, mode)[0, :, 1, :].cpu() for mode in MODES}
    baseline = random_composition_baseline(*head_shape(model), ctx.params["baseline_samples"],
                                           torch.Generator().manual_seed(ctx.params["data_seed"]))
    fig = draw_composition(scores, baseline, size(model, "n_heads"))
    ctx.save(fig)
    return {"model": name, "previous_token_head": head_name(*prev_head),
            "induction_head": head_name(*ind_head),
            "k_composition_max": float(scores["K"].max()),
            "k_composition_previous_to_induction": float(scores["K"][prev_head[1], ind_head[1]]),
            "q_composition_max": float(scores["Q"].max()), "v_composition_max": float(scores["V"].max()),
            "baseline_mean": float(baseline.mean()), "baseline_std": float(baseline.std()),
            "baseline_samples": len(baseline),
            "scores": {mode: value.tolist() for mode, value in scores.items()},
            "notes": {"scores": "[layer-0 head][layer-1 head], TransformerLens's definition"}}


def draw_composition(scores, baseline, heads):
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
    top = max(float(s.max()) for s in scores.values())
    names = [f"0.{h}" for h in range(heads)], [f"1.{h}" for h in range(heads)]
    for axis, (mode, value) in zip(axes, scores.items()):
        heat_map(axis, value.numpy(), names[0], names[1], vmin=0, vmax=top)
        axis.set_title(f"{mode}-composition")
        axis.set_xlabel("layer-1 head")
    axes[0].set_ylabel("layer-0 head")         # the panels share their rows: one label, no crowding
    axes[3].hist(baseline.numpy(), bins=30, color="grey", label="random matrices")
    for mode, colour in zip(scores, ("#1b9e77", "#B2182B", "#7570b3")):
        axes[3].axvline(float(scores[mode].max()), color=colour, label=f"max {mode}")
    axes[3].set_xlabel("composition score")
    legend_outside(axes[3], fontsize=10)
    fig.tight_layout()
    return fig


# --- induction circuits ---------------------------------------------------------------------------

def make_induction_circuits(ctx):
    from mechinterp.transformers.circuits import diagonal_share, ov_circuit, prefix_matching_circuit
    from mechinterp.transformers.detectors import copying_scores
    name, model = ctx.first_model()
    prev_head, ind_head, _, induction = key_heads(model, eval_tokens(ctx, model), ctx.params["half"])
    ov = ov_circuit(model, *ind_head).cpu()
    qk = prefix_matching_circuit(model, ind_head[0], ind_head[1], prev_head[1]).cpu()
    copying = copying_scores(model)
    fig = draw_circuits(ov, qk, ind_head, prev_head)
    ctx.save(fig)
    return {"model": name, "induction_head": head_name(*ind_head),
            "previous_token_head": head_name(*prev_head),
            "copying_score": float(copying[ind_head]), "copying_scores": copying.tolist(),
            "prefix_matching_score": diagonal_share(qk), "ov_diagonal_share": diagonal_share(ov),
            "induction_attention_score": float(induction[ind_head]),
            "notes": {"copying_score": "positive share of the eigenvalues of W_E W_OV W_U",
                      "prefix_matching_score": "share of query tokens whose highest QK score (through "
                                               "the previous-token head's OV) is the same token",
                      "ov_diagonal_share": "share of tokens whose largest OV logit is themselves"}}


def draw_circuits(ov, qk, ind_head, prev_head):
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    for axis, matrix, title, xlabel, ylabel in (
            (axes[0], ov, f"OV circuit of {head_name(*ind_head)}: copying", "logit of token", "attended token"),
            (axes[1], qk, f"QK of {head_name(*ind_head)} through {head_name(*prev_head)}: prefix matching",
             "previous token of the key", "query token")):
        limit = float(matrix.abs().max())
        axis.imshow(matrix.numpy(), cmap=SIGNED, vmin=-limit, vmax=limit)
        axis.set_title(title, fontsize=13)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


# --- ablation and patching ------------------------------------------------------------------------

def ablated_loss(model, heads, tokens, reference, half, method) -> float:
    """The repeated-token loss with the given heads ablated together."""
    from mechinterp.transformers.ablation import ablate_heads
    from mechinterp.transformers.icl import repeated_token_loss
    with ablate_heads(model, heads, method, reference):
        return repeated_token_loss(model, tokens, half)


def circuit_heads(model, tokens, half, threshold):
    """(previous-token heads of layer 0, induction heads of the last layer): score above threshold."""
    from mechinterp.transformers.detectors import induction_scores, previous_token_scores
    previous, induction = previous_token_scores(model, tokens), induction_scores(model, tokens, half)
    last = size(model, "n_layers") - 1
    heads = range(size(model, "n_heads"))
    return ([(0, h) for h in heads if previous[0, h] > threshold],
            [(last, h) for h in heads if induction[last, h] > threshold])


def make_head_ablation(ctx):
    from mechinterp.transformers.icl import repeated_token_loss
    from mechinterp.transformers.patching import correct_logit_metric, patch_each_head
    from mechinterp.transformers.sequences import repeated_loss_positions
    (name, model), half, method = ctx.first_model(), ctx.params["half"], ctx.params["method"]
    tokens = eval_tokens(ctx, model)
    reference = eval_tokens(ctx, model, seed_offset=1)     # other sequences, the same statistics
    previous_heads, induction_heads = circuit_heads(model, tokens, half, ctx.params["threshold"])
    single = {h: ablated_loss(model, [h], tokens, reference, half, method) for h in all_heads(model)}
    groups = {"induction heads": ablated_loss(model, induction_heads, tokens, reference, half, method),
              "previous-token heads": ablated_loss(model, previous_heads, tokens, reference, half, method)}
    corrupted = torch.cat([reference[:, :half], tokens[:, half:]], dim=1)   # first half: no help
    patching = patch_each_head(model, tokens, corrupted, correct_logit_metric(tokens, repeated_loss_positions(half)))
    others = [h for h in all_heads(model) if h not in previous_heads + induction_heads]
    clean = repeated_token_loss(model, tokens, half)
    ctx.save(draw_ablation(model, single, groups, patching.recovered, clean))
    return {"model": name, "method": method, "loss_clean": clean,
            **ablation_numbers(model, single, groups, patching, previous_heads, induction_heads, others),
            "notes": {"loss_induction_ablated": f"every induction head (score > {ctx.params['threshold']}) "
                                                f"{method}-ablated together",
                      "loss_other_ablated_max": "the worst single head in neither the induction nor the "
                                                "previous-token group",
                      "patching_recovered": "(M_patched - M_corrupted) / (M_clean - M_corrupted), M the "
                                            "mean centred logit of the repeated tokens, one head at a time"}}


def ablation_numbers(model, single, groups, patching, previous_heads, induction_heads, others) -> dict:
    """The losses and patching effects the ablation figure shows, by head name."""
    return {
            "loss_induction_ablated": groups["induction heads"],
            "loss_previous_token_ablated": groups["previous-token heads"],
            "loss_single_induction_ablated_max": max((single[h] for h in induction_heads), default=None),
            "loss_other_ablated_max": max((single[h] for h in others), default=None),
            "chance_loss": math.log(size(model, "d_vocab")),
            "induction_heads": [head_name(*h) for h in induction_heads],
            "previous_token_heads": [head_name(*h) for h in previous_heads],
            "other_heads": [head_name(*h) for h in others],
            "losses": {head_name(*h): value for h, value in single.items()},
            "patching_recovered": {head_name(*h): float(patching.recovered[h]) for h in all_heads(model)},
            "patching_recovered_induction_heads": sum(float(patching.recovered[h]) for h in induction_heads)}


def draw_ablation(model, single, groups, recovered, clean):
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.4, 1]})
    names = [head_name(*h) for h in all_heads(model)] + [name.replace(" ", "\n") for name in groups]
    values = [single[h] for h in all_heads(model)] + list(groups.values())
    left.bar(names, values, color=["#B2182B"] * len(single) + ["#67001F"] * len(groups))
    left.tick_params(axis="x", labelrotation=45, labelsize=11)
    left.axhline(clean, color="black", label="no ablation")
    left.axhline(math.log(size(model, "d_vocab")), color="grey", linestyle="--", label="chance (ln vocab)")
    left.set_xlabel("heads ablated")
    left.set_ylabel("loss on repeated tokens (nats)")
    left.legend(fontsize=10)
    right.bar([head_name(*h) for h in all_heads(model)], [float(recovered[h]) for h in all_heads(model)],
              color="#2166AC")
    right.set_xlabel("head patched clean -> corrupted")
    right.set_ylabel("recovered fraction")
    fig.tight_layout()
    return fig


# --- universality ---------------------------------------------------------------------------------

def make_induction_universality(ctx):
    rows = []
    for name in ctx.declared_models[:ctx.params["seeds"]]:
        model = ctx.model(name)
        _, ind_head, _, induction = key_heads(model, eval_tokens(ctx, model), ctx.params["half"])
        rows.append({"model": name, "seed": ctx.model_meta(name)["config"]["seed"],
                     "induction_head": head_name(*ind_head), "induction_score": float(induction[ind_head])})
    fig, axis = plt.subplots(figsize=(7, 4.5))
    axis.bar([f"seed {row['seed']}\nhead {row['induction_head']}" for row in rows],
             [row["induction_score"] for row in rows], color="#B2182B")
    axis.set_ylim(0, 1)
    axis.set_ylabel("best induction score")
    ctx.save(fig)
    return {"seeds": [row["seed"] for row in rows], "models": rows,
            "induction_scores": [row["induction_score"] for row in rows],
            "induction_scores_min": min(row["induction_score"] for row in rows)}
