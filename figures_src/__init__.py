"""Figure scripts: each module here declares the slide figures it makes and how to make them.

A figure script is a plain module with a FIGURES dict literal (read without importing the module,
so deciding what is stale costs no torch import) and one function per figure:

    FIGURES = {
        "pipeline/first-layer-filters": {          # id: family/name, the path under talk/public/figures
            "make": "make_first_layer_filters",    # function in this module, called as fn(ctx)
            "models": ["shapes-cnn-a"],            # zoo models read (their checkpoints are hashed)
            "params": {"quick": {"steps": 20}, "full": {"steps": 500}},  # per profile
            "outputs": ["png"],                    # image files written; <id>.json always is
        },
    }

    def make_first_layer_filters(ctx):
        model = ctx.model("shapes-cnn-a")          # eval mode, on ctx.device
        fig, ax = plt.subplots()
        ...
        ctx.save(fig)                              # -> <id>.png (or ctx.save(fig, "svg"))
        return {"test_accuracy": 0.97}             # the numbers shown -> <id>.json

A module here is a figure script if and only if it declares FIGURES; helper modules shared by
the scripts (plotting.py: the drawing helpers) simply don't. ctx.model refuses a model the
figure's entry does not list under "models".

The runner is the package figures_src/runner/ (`make figures`, `python -m figures_src.runner`):
it hashes everything a figure depends on (the part of this script its function reaches, the
engine files that part imports, its models' checkpoints and configs, its params and the
profile), reruns only stale figures, writes outputs atomically and records them in
talk/public/figures/manifest.json. figures_src/runner/style.py holds the deck's one matplotlib style.
"""
