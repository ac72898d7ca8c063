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

The runner (figures_src/runner.py, `make figures`) hashes everything a figure depends on (this
script, the engine files it imports, its models' checkpoints and configs, its params and the
profile), reruns only stale figures, writes outputs atomically and records them in
talk/public/figures/manifest.json. figures_src.style holds the one matplotlib style of the deck.
"""
