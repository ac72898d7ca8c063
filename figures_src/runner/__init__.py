"""The figure runner: finds the figures the scripts in figures_src/ declare, decides which are
stale, and makes those in worker processes, safely (`make figures`, `python -m figures_src.runner`).

This package is the runner's machinery; the figure scripts are the modules beside it in
figures_src/ that declare FIGURES. What decktools and other callers use is exported here, and
nothing else of the package is a promise:

    from figures_src import runner
    runner.declared_ids(runner.SCRIPTS_DIR)           # {figure id: script}, from the literals alone
    specs = runner.discover_figures(runner.SCRIPTS_DIR, runner.REPO_ROOT)
    runner.run(runner.parse_args(["--profile", "quick"]), figure_ids=["zoo/accuracy"])
    runner.write_atomic(path, text)                   # the engine's one atomic write
    with runner.stop_signals_handled(): ...           # Ctrl-C as one clean interrupt

The modules, in the order a run uses them:
    paths       default folders (repository, scripts, figures, models, staging)
    discover    FIGURES read without importing the scripts; each figure's dependencies (reach.py),
                what each file gave kept by content digest (discovery_cache.py)
    staleness   content hashes of a figure's inputs, the manifest, why a figure is stale
    planning    selection (--ids, --only), the stale plan, zoo models rebuilt first
    lock        one runner per figures folder
    jobs        workers started, finished figures installed and recorded
    worker      one figure made in its own process (context.py, style.py: what a figure sees)
    signals     Ctrl-C and SIGTERM as one clean interrupt
    cli         the command line

With --cluster (CLUSTER= in make) only the execution changes, to a Dask cluster:
    cluster     connect, ship code and checkpoints, submit each stale figure, install what returns
    codeship    the project's code as one bundle per commit, unpacked once on each worker
    remote      what a worker runs: the code check, checkpoint blobs, one figure, one zoo model
    slurm       CLUSTER=slurm: dask-jobqueue's SLURMCluster from cluster.yaml
    zoo_cluster make models CLUSTER=...: the zoo's stale trained models on the cluster
"""
from figures_src.runner.cli import main, parse_args, run
from figures_src.runner.discover import (DuplicateFigureIdError, FigureSpec, FigureSpecError,
                                        UnreadableScriptError, declared_ids, discover_figures)
from figures_src.runner.paths import FIGURES_DIR, MODELS_DIR, REPO_ROOT, SCRIPTS_DIR
from figures_src.runner.planning import UNKNOWN_MODEL, did_you_mean, unknown_models
from figures_src.runner.signals import stop_signals_handled
from figures_src.runner.staleness import (FIX_FIRST, ZOO_PROBLEM, Manifest, figure_inputs, stale_reason,
                                         zoo_file_problem)
from figures_src.runner.worker import to_jsonable
from mechinterp.atomic_file import write_atomic
from mechinterp.models.failures import shown_path

__all__ = ["FIGURES_DIR", "FIX_FIRST", "MODELS_DIR", "REPO_ROOT", "SCRIPTS_DIR", "DuplicateFigureIdError",
           "FigureSpec", "FigureSpecError",
           "Manifest", "UnreadableScriptError", "declared_ids", "did_you_mean", "discover_figures",
           "figure_inputs", "main", "parse_args", "run", "shown_path", "stale_reason",
           "stop_signals_handled", "to_jsonable", "unknown_models", "write_atomic", "UNKNOWN_MODEL", "ZOO_PROBLEM",
           "zoo_file_problem"]
