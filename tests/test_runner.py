"""The figure runner: staleness by content hashes, atomic outputs, failures and interruptions.

Each test runs the real runner (`python -m figures_src.runner`) as a subprocess over figure
scripts and model checkpoints written into a temporary folder.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from figures_src.runner import FigureSpecError, UnreadableScriptError, declared_ids, discover_figures
from figures_src.runner.discover import engine_dependencies

REPO = Path(__file__).resolve().parent.parent

ALPHA = '''
import matplotlib.pyplot as plt

FIGURES = {
    "alpha/one": {"make": "make_one", "params": {"quick": {"n": 3}, "full": {"n": 5}}},
    "alpha/two": {"make": "make_two", "models": ["m1"]},
}

def make_one(ctx):
    fig, ax = plt.subplots()
    ax.plot(range(ctx.params["n"]))
    ctx.save(fig)
    return {"n": ctx.params["n"], "profile": ctx.profile}

def make_two(ctx):
    ctx.model_meta("m1")            # a figure reads each model it declares
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    ctx.save(fig)
    return {"bars": 2}
'''

BETA = '''
import time
import matplotlib.pyplot as plt

FIGURES = {"beta/three": {"make": "make_three", "models": ["m2"]}}

def make_three(ctx):
    ctx.model_meta("m2")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ctx.save(fig)
    BEHAVIOUR
    return {"checkpoint_bytes": (ctx.models_dir / "m2" / "checkpoint.pt").stat().st_size}
'''


@pytest.fixture
def workspace(tmp_path):
    scripts, figures, models = tmp_path / "scripts", tmp_path / "figures", tmp_path / "models"
    scripts.mkdir()
    (scripts / "alpha.py").write_text(ALPHA)
    (scripts / "beta.py").write_text(BETA.replace("BEHAVIOUR", "pass"))
    for name in ("m1", "m2"):
        (models / name).mkdir(parents=True)
        (models / name / "checkpoint.pt").write_bytes(os.urandom(256))
        (models / name / "meta.json").write_text(json.dumps({"config": {"name": name}}))
    return scripts, figures, models


def run_runner(workspace, *extra, wait=True):
    scripts, figures, models = workspace
    command = [sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts),
               "--figures-dir", str(figures), "--models-dir", str(models), "--profile", "quick",
               "--device", "cpu", *extra]
    if not wait:
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def made_ids(result) -> set[str]:
    return {line.split()[1] for line in (result.stdout + result.stderr).splitlines() if line.startswith("made ")}


def manifest(workspace) -> dict:
    return json.loads((workspace[1] / "manifest.json").read_text())["figures"]


def test_first_run_makes_everything_and_records_provenance(workspace):
    result = run_runner(workspace)
    assert result.returncode == 0, result.stderr
    assert made_ids(result) == {"alpha/one", "alpha/two", "beta/three"}
    entries = manifest(workspace)
    one = entries["alpha/one"]
    assert one["device"] == "cpu" and one["seconds"] >= 0 and one["time"] and one["engine_commit"]
    assert one["inputs"]["profile"] == "quick" and set(one["outputs"]) == {"alpha/one.png", "alpha/one.json"}
    assert json.loads((workspace[1] / "alpha" / "one.json").read_text()) == {"n": 3, "profile": "quick"}
    assert set(entries["alpha/two"]["inputs"]["models"]) == {"m1"}
    assert "make figures ONLY='alpha/one'" in one["command"]


def test_staleness_follows_content_hashes(workspace):
    scripts, figures, models = workspace
    assert run_runner(workspace).returncode == 0
    unchanged = run_runner(workspace)
    assert made_ids(unchanged) == set() and "0 made, 3 up to date" in unchanged.stdout

    (scripts / "alpha.py").write_text(ALPHA.replace("import matplotlib.pyplot as plt",   # code every
                                                    "import matplotlib.pyplot as plt\nplt.ioff()"))  # figure runs
    assert made_ids(run_runner(workspace)) == {"alpha/one", "alpha/two"}

    (models / "m2" / "checkpoint.pt").write_bytes(os.urandom(256))    # a checkpoint: its figures
    remade = run_runner(workspace)
    assert made_ids(remade) == {"beta/three"}
    assert "stale  beta/three: checkpoint m2/checkpoint.pt changed (model m2)\n" in remade.stdout   # said why

    full = run_runner(workspace, "--profile", "full")
    assert made_ids(full) == {"alpha/one", "alpha/two", "beta/three"}
    assert "profile changed from quick to full: 3 figures stale" in full.stdout and "stale  " not in full.stdout
    assert json.loads((figures / "alpha" / "one.json").read_text())["n"] == 5

    (figures / "alpha" / "two.png").unlink()                         # a deleted output
    assert made_ids(run_runner(workspace, "--profile", "full")) == {"alpha/two"}


def test_an_edit_remakes_only_the_figures_whose_code_reaches_it(workspace):
    scripts = workspace[0]
    assert run_runner(workspace).returncode == 0
    edited = ALPHA.replace("    ax.bar([0, 1], [1, 2])", "    ax.bar([0, 1], [1, 3])")
    (scripts / "alpha.py").write_text(edited)                            # one figure's function
    assert made_ids(run_runner(workspace)) == {"alpha/two"}
    with_helper = edited.replace("def make_two(ctx):", "def bars():\n    return [1, 3]\n\n\ndef make_two(ctx):")
    (scripts / "alpha.py").write_text(with_helper.replace("ax.bar([0, 1], [1, 3])", "ax.bar([0, 1], bars())"))
    assert made_ids(run_runner(workspace)) == {"alpha/two"}              # ... and a helper it calls
    (scripts / "alpha.py").write_text((scripts / "alpha.py").read_text().replace("return [1, 3]", "return [2, 3]"))
    assert made_ids(run_runner(workspace)) == {"alpha/two"}
    (scripts / "alpha.py").write_text((scripts / "alpha.py").read_text() + "\n# a comment outside any code\n")
    assert made_ids(run_runner(workspace)) == set()


def test_only_and_force_and_list(workspace):
    assert run_runner(workspace).returncode == 0
    forced = run_runner(workspace, "--only", "alpha/*", "--force")
    assert made_ids(forced) == {"alpha/one", "alpha/two"}
    listing = run_runner(workspace, "--list", "--force")
    assert "stale  beta/three: forced" in listing.stdout and made_ids(listing) == set()
    unknown = run_runner(workspace, "--only", "nope/*")
    assert unknown.returncode == 2 and "no figure id matches" in unknown.stderr
    # trial R wrote ONLY='myresnet/from-noise myresnet/diversity': ids hold no spaces, so either splits
    for several in ("alpha/one beta/three", "alpha/one,beta/three", " alpha/one ,  beta/three "):
        assert made_ids(run_runner(workspace, "--only", several, "--force")) == {"alpha/one", "beta/three"}


def test_stale_figures_start_longest_first_by_their_last_seconds(workspace):
    """One worker: the figures start (and so finish) in the order of the seconds the manifest
    recorded for them, longest first; a figure never made before goes first."""
    assert run_runner(workspace).returncode == 0
    recorded = json.loads((workspace[1] / "manifest.json").read_text())
    for figure_id, seconds in {"alpha/one": 1.0, "alpha/two": 30.0, "beta/three": 5.0}.items():
        recorded["figures"][figure_id]["seconds"] = seconds
    (workspace[1] / "manifest.json").write_text(json.dumps(recorded))
    forced = run_runner(workspace, "--force", "--jobs", "1")
    order = [line.split()[1] for line in forced.stdout.splitlines() if line.startswith("made ")]
    assert order == ["alpha/two", "beta/three", "alpha/one"]
    del recorded["figures"]["alpha/one"]
    (workspace[1] / "manifest.json").write_text(json.dumps(recorded))
    forced = run_runner(workspace, "--force", "--jobs", "1")
    assert [line.split()[1] for line in forced.stdout.splitlines() if line.startswith("made ")][0] == "alpha/one"


SUMS = '''
import matplotlib.pyplot as plt

FIGURES = {"sums/total": {"make": "make_total"}, "sums/other": {"make": "make_total"}}

def make_total(ctx):
    import torch
    torch.manual_seed(0)
    values = torch.randn(4_000_000)       # a sum split over threads adds in another order
    fig, ax = plt.subplots()
    ctx.save(fig)
    return {"sum": float(values.sum()), "threads": torch.get_num_threads()}
'''


def test_a_figure_writes_the_same_numbers_with_any_jobs_or_thread_setting(tmp_path):
    """On the CPU every figure runs with one torch thread, whatever JOBS or MECHINTERP_THREADS."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "sums.py").write_text(SUMS)
    runs = {"jobs1": (["--jobs", "1"], {}), "jobs2": (["--jobs", "2"], {}),
            "threads2": (["--jobs", "1"], {"MECHINTERP_THREADS": "2"})}
    for name, (extra, env) in runs.items():
        command = [sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts), "--figures-dir",
                   str(tmp_path / name), "--models-dir", str(tmp_path), "--device", "cpu", *extra]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                                env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
    written = {name: (tmp_path / name / "sums" / "total.json").read_bytes() for name in runs}
    assert written["jobs1"] == written["jobs2"] == written["threads2"]
    assert json.loads(written["jobs1"])["threads"] == 1


def test_outputs_of_figures_no_script_declares_are_removed_with_one_line(workspace):
    scripts, figures, _ = workspace
    assert run_runner(workspace).returncode == 0
    (scripts / "alpha.py").write_text(ALPHA.replace('''    "alpha/two": {"make": "make_two", "models": ["m1"]},\n''', ""))
    (scripts / "beta.py").write_text("FIGURES = {\n")            # does not parse: its figures are unknown
    kept = run_runner(workspace, "--ids", "alpha/one")
    assert kept.returncode == 0 and set(manifest(workspace)) == {"alpha/one", "alpha/two", "beta/three"}
    (scripts / "beta.py").unlink()                                # the whole script deleted
    listing = run_runner(workspace, "--list")
    assert "will remove the outputs of alpha/two, beta/three" in listing.stdout
    assert (figures / "alpha" / "two.png").exists()
    result = run_runner(workspace)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "removed" in line]
    assert lines == [f"figures: removed the outputs and manifest entries of alpha/two, beta/three: no script in "
                     f"{scripts}/ declares them any more (files made by code that was removed: restore its "
                     "script, from git if it was committed, and `make figures` makes them again)"]
    assert set(manifest(workspace)) == {"alpha/one"}
    assert sorted(p.relative_to(figures).as_posix() for p in figures.rglob("*")) == [
        "alpha", "alpha/one.json", "alpha/one.png", "manifest.json"]
    again = run_runner(workspace)
    assert "removed" not in again.stdout and "0 made, 1 up to date" in again.stdout


def test_failing_figure_keeps_previous_outputs_and_others_run(workspace):
    scripts, figures, _ = workspace
    assert run_runner(workspace).returncode == 0
    before = {p: p.read_bytes() for p in (figures / "beta").iterdir()}
    entry_before = manifest(workspace)["beta/three"]
    (scripts / "beta.py").write_text(BETA.replace("BEHAVIOUR", "raise RuntimeError('the model diverged')"))
    result = run_runner(workspace, "--force")
    assert result.returncode == 1
    assert "FAILED beta/three: RuntimeError: the model diverged" in result.stderr
    assert result.stderr.count("RuntimeError: the model diverged") == 1   # shown once, as it happened
    assert "failed (see above): beta/three" in result.stderr          # and named again at the end
    assert made_ids(result) == {"alpha/one", "alpha/two"}
    assert {p: p.read_bytes() for p in (figures / "beta").iterdir()} == before
    assert manifest(workspace)["beta/three"] == entry_before
    listing = run_runner(workspace, "--list")   # running it again would fail again: said so
    line = next(line for line in listing.stdout.splitlines() if line.startswith("stale  beta/three"))
    assert line == (f"stale  beta/three: script changed; its last run with these inputs failed (RuntimeError: the "
                    f"model diverged at {scripts / 'beta.py'}:{BETA.splitlines().index('    BEHAVIOUR') + 1}): fix that first")
    (scripts / "beta.py").write_text(BETA.replace("BEHAVIOUR", "pass  # fixed"))
    assert run_runner(workspace, "--list").stdout.count("stale  beta/three: script changed\n") == 1
    assert run_runner(workspace).returncode == 0
    assert "failed" not in json.loads((figures / "manifest.json").read_text())


def test_numbers_json_cannot_hold_are_named_by_their_key_and_nan_is_written_as_null(workspace):
    scripts, figures, _ = workspace
    (scripts / "beta.py").write_text(BETA.replace(
        "BEHAVIOUR", "return {'layers': [{'names': {'conv1', 'conv2'}}]}"))
    result = run_runner(workspace, "--only", "beta/three")
    assert result.returncode == 1
    assert ("FAILED beta/three: TypeError: make_three's numbers['layers'][0]['names'] is a set, which a "
            "figure's JSON cannot hold: return a list, a dict, a number or a string there") in result.stderr
    (scripts / "beta.py").write_text(BETA.replace(
        "BEHAVIOUR", "return {'norm': float('nan'), 'ratio': float('inf'), 'ok': 1.5}"))
    assert run_runner(workspace, "--only", "beta/three").returncode == 0
    assert json.loads((figures / "beta" / "three.json").read_text()) == {"norm": None, "ratio": None, "ok": 1.5}


def test_a_device_this_machine_lacks_is_one_error_before_anything_starts(workspace, monkeypatch):
    """Not a FAILED line per figure, each recorded as failed in the manifest (which rebuilt the deck)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")       # the runner's torch sees no GPU, on a GPU machine too
    scripts, figures, _ = workspace
    assert run_runner(workspace).returncode == 0
    before = (figures / "manifest.json").read_bytes()
    result = run_runner(workspace, "--device", "cuda", "--force")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: device 'cuda' was requested but ")
    assert lines[0].endswith("; use DEVICE=cpu or DEVICE=auto (--device cpu on a command line); no figure was made")
    assert (figures / "manifest.json").read_bytes() == before


def test_missing_model_names_the_fix(workspace):
    (workspace[2] / "m1" / "checkpoint.pt").unlink()
    result = run_runner(workspace)
    assert result.returncode == 1
    assert "cannot alpha/two: model 'm1' has no checkpoint" in result.stderr and "make models" in result.stderr
    assert result.stderr.count("has no checkpoint") == 1
    assert made_ids(result) == {"alpha/one", "beta/three"}


def start_long_figure(workspace):
    """Start a runner whose beta/three writes its image, then works for a minute; return once
    the image is staged (the figure is mid-way) as (process, staging folder)."""
    (workspace[0] / "beta.py").write_text(BETA.replace("BEHAVIOUR", "time.sleep(60)"))
    process = run_runner(workspace, "--only", "beta/three", wait=False)
    staging = REPO / ".figure-staging" / f"run-{process.pid}" / "beta__three"
    deadline = time.time() + 120
    while not (staging / "three.png").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (staging / "three.png").exists(), "the figure never started"
    return process, staging


def test_interrupted_run_leaves_no_half_written_file(workspace):
    figures = workspace[1]
    assert run_runner(workspace).returncode == 0
    before = {p.relative_to(figures): p.read_bytes() for p in figures.rglob("*") if p.is_file()}
    process, staging = start_long_figure(workspace)                 # interrupt it mid-figure
    os.killpg(process.pid, signal.SIGINT)                         # Ctrl-C reaches the whole group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr
    after = {p.relative_to(figures): p.read_bytes() for p in figures.rglob("*") if p.is_file()}
    assert after == before                                        # nothing new, nothing half-written
    assert not staging.exists()


def test_a_second_runner_on_the_same_folder_is_refused(workspace):
    first, _ = start_long_figure(workspace)
    second = run_runner(workspace, "--only", "alpha/one")
    os.killpg(first.pid, signal.SIGINT)
    first.communicate(timeout=60)
    assert second.returncode != 0 and "another `make figures` is writing" in second.stderr


def test_discovery_reads_declarations_without_importing(tmp_path):
    (tmp_path / "gamma.py").write_text('import sys\nsys.exit("imported!")\n'
                                       'from mechinterp.hooks import capture\n'
                                       'FIGURES = {"gamma/a": {"make": "f", "models": ["x"]}}\n')
    specs = discover_figures(tmp_path, REPO)
    assert specs["gamma/a"].models == ["x"]
    relative = {str(p.relative_to(REPO)) for p in specs["gamma/a"].engine_files}
    assert {"mechinterp/__init__.py", "mechinterp/hooks.py"} <= relative   # f is not defined: the whole file


def test_each_figure_depends_on_the_engine_modules_its_own_code_imports(tmp_path):
    (tmp_path / "delta.py").write_text(textwrap.dedent('''
        from mechinterp.superposition import toy_models
        FIGURES = {"delta/a": {"make": "make_a"}, "delta/b": {"make": "make_b"}}
        def make_a(ctx):
            from mechinterp.hooks import capture
            return {}
        def helper():
            return toy_models
        def make_b(ctx):
            return helper()
    '''))
    specs = discover_figures(tmp_path, REPO)
    engine = {figure: {str(p.relative_to(REPO)) for p in specs[figure].engine_files} for figure in specs}
    assert "mechinterp/hooks.py" in engine["delta/a"] and "mechinterp/superposition/toy_models.py" not in engine["delta/a"]
    assert "mechinterp/superposition/toy_models.py" in engine["delta/b"]
    for files in engine.values():                      # what the runner itself runs every figure through
        assert {"figures_src/runner/style.py", "figures_src/runner/context.py", "mechinterp/device.py"} <= files
        assert "figures_src/runner/__init__.py" not in files and "figures_src/runner/cli.py" not in files
    assert "def make_a" in specs["delta/a"].script_source and "def make_b" not in specs["delta/a"].script_source


def test_dynamic_name_lookups_make_the_whole_script_an_input(tmp_path):
    (tmp_path / "epsilon.py").write_text(textwrap.dedent('''
        from mechinterp.superposition import toy_models
        FIGURES = {"epsilon/a": {"make": "make_a"}}
        def make_a(ctx):
            return globals()["helper"]()
        def helper():
            return {}
    '''))
    spec = discover_figures(tmp_path, REPO)["epsilon/a"]
    assert "def helper" in spec.script_source
    assert any(p.name == "toy_models.py" for p in spec.engine_files)


def test_engine_dependencies_follow_imports_transitively():
    deps = {str(p.relative_to(REPO)) for p in engine_dependencies(REPO / "figures_src" / "runner" / "cli.py", REPO)}
    assert {"figures_src/runner/discover.py", "figures_src/runner/staleness.py", "figures_src/__init__.py"} <= deps


def test_declarations_may_use_module_constants(tmp_path):
    (tmp_path / "delta.py").write_text('BASE = {"steps": 10, "lr": -0.5}\nMODEL = "m1"\n'
                                       'FIGURES = {"delta/a": {"make": "f", "models": [MODEL],'
                                       ' "params": {"quick": {**BASE, "steps": 2}, "full": BASE}}}\n')
    spec = discover_figures(tmp_path, REPO)["delta/a"]
    assert spec.models == ["m1"] and spec.params_for("quick") == {"steps": 2, "lr": -0.5}
    assert spec.params_for("full") == {"steps": 10, "lr": -0.5}


@pytest.mark.parametrize("source, message", [
    ('FIGURES = {"bad": {"make": "f"}}', "ids are 'family/name'"),
    ('FIGURES = {"a/b": {"make": "f", "colour": 1}}', "unknown keys"),
    ('FIGURES = {"a/b": {"models": []}}', "needs a dict with at least 'make'"),
    ('FIGURES = {"a/b": {"make": make_it}}', "must be a literal dict"),
    ('FIGURES = {"a/b": {"make": "f", "params": dict(steps=1)}}', "Call is not a literal"),
    ('FIGURES = {"a/b": {"make": "f", "resources": {"GPU": "one"}}}', "resources must map names to positive numbers"),
    ('FIGURES = {"a/b": {"make": "f", "params": {"quick": {"images": 100}}}}',        # tried in quick only
     "has params for quick but not for full, which makes it too (`make slides` and `make figures` run full "
     'unless PROFILE= says otherwise): add "full": {...} to its params'),
    ('FIGURES = {"a/b": {"make": "f", "params": {"full": {"steps": 9}}, "profiles": ["quick"]}}',
     "has params for full but not for quick"),
])
def test_bad_declarations_name_file_and_line(tmp_path, source, message):
    (tmp_path / "broken.py").write_text("\n\n" + source + "\n")
    with pytest.raises(FigureSpecError) as error:
        discover_figures(tmp_path, REPO)
    assert f"{tmp_path / 'broken.py'}:3" in str(error.value) and message in str(error.value)


@pytest.mark.parametrize("change, line", [
    ('FIGURES["lab/x"] = {"make": "f"}', 5),
    ('FIGURES.update({"lab/x": {"make": "f"}})', 5),
    ('FIGURES |= {"lab/x": {"make": "f"}}', 5),
    ('FIGURES["lab/a"]["models"].append("m2")', 5),
    ('for name in ("x", "y"):\n    FIGURES[f"lab/{name}"] = {"make": "f"}', 6),
    ('FIGURES = {**FIGURES, "lab/x": {"make": "f"}}', 5),
])
def test_a_figure_added_after_the_literal_is_refused_at_its_line(tmp_path, change, line):
    """The runner never runs a script, so such a figure would be silently missing."""
    script = tmp_path / "lab.py"
    script.write_text('FIGURES = {\n    "lab/a": {"make": "f", "models": ["m1"]},\n}\n\n' + change +
                      "\n\n\ndef f(ctx):\n    return {}\n")
    for read in (lambda: discover_figures(tmp_path, REPO), lambda: declared_ids(tmp_path)):
        with pytest.raises(FigureSpecError) as error:
            read()
        assert (error.value.path, error.value.line) == (script, line)
        assert str(error.value).startswith(f"{script}:{line}: `")
        assert ("changes FIGURES after its dict literal (line 1)" in str(error.value)
                and "declare every figure inside the one FIGURES dict literal" in str(error.value))


def test_a_script_may_read_its_FIGURES_and_annotate_it(tmp_path):
    (tmp_path / "lab.py").write_text('FIGURES: dict[str, dict] = {"lab/a": {"make": "f"}}\nIDS = sorted(FIGURES)\n\n'
                                     'def f(ctx):\n    return {"keys": len(FIGURES["lab/a"]), "ids": IDS}\n')
    assert set(discover_figures(tmp_path, REPO)) == set(declared_ids(tmp_path)) == {"lab/a"}


def test_a_script_that_does_not_parse_is_named_and_the_others_are_still_read(tmp_path):
    (tmp_path / "good.py").write_text('FIGURES = {"good/a": {"make": "f"}}\n')
    (tmp_path / "mylab.py").write_text('FIGURES = {"mylab/b": {"make": "f"}}\n\n\ndef broken(:\n')
    (tmp_path / "helper.py").write_text("def helper():\n    return 1\n")     # no FIGURES: not a script
    with pytest.raises(UnreadableScriptError) as error:
        discover_figures(tmp_path, REPO)
    assert set(error.value.found) == {"good/a"}
    assert error.value.problems == [f"{tmp_path / 'mylab.py'}:4: invalid syntax: `def broken(:`; fix that "
                                    "line (until the script parses, the runner cannot read which figures it declares)"]
    assert isinstance(error.value, FigureSpecError)          # callers that catch those stay clean


GAMMA = """
FIGURES = {
    "gamma/everywhere": {"make": "make", "params": {"quick": {"n": 1}, "full": {"n": 9}}},
    "gamma/gpu": {"make": "make", "profiles": ["gpu"], "params": {"quick": {"n": 1}, "full": {"n": 9}}},
}

def make(ctx):
    pass
"""


def test_a_gpu_figure_is_selected_only_in_the_gpu_profile_which_takes_full_params(tmp_path):
    from figures_src.runner import parse_args
    from figures_src.runner.planning import select
    (tmp_path / "gamma.py").write_text(GAMMA)
    specs = discover_figures(tmp_path, REPO)
    for profile, expected in (("quick", ["gamma/everywhere"]), ("full", ["gamma/everywhere"]),
                              ("gpu", ["gamma/everywhere", "gamma/gpu"])):
        assert select(specs, parse_args(["--profile", profile]), None) == expected
    assert specs["gamma/gpu"].params_for("gpu") == specs["gamma/everywhere"].params_for("gpu") == {"n": 9}
    (tmp_path / "gamma.py").write_text(GAMMA.replace('["gpu"]', '["tpu"]'))
    with pytest.raises(FigureSpecError, match="profiles must be among quick, full, gpu"):
        discover_figures(tmp_path, REPO)



def test_a_figure_is_stale_when_the_speakers_own_package_it_imports_changes(tmp_path):
    """A script's helper imports the test split from the speaker's package (my_lab/, in the
    project folder): that package is an input of the figure, named when it changes; installed
    packages and the stdlib are not."""
    from figures_src.runner.staleness import Manifest, figure_inputs, stale_reason
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "my_lab" / "sub").mkdir(parents=True)
    (tmp_path / "my_lab" / "__init__.py").write_text("")
    (tmp_path / "my_lab" / "sub" / "__init__.py").write_text("")
    (tmp_path / "my_lab" / "sub" / "seeds.py").write_text("SEED = 0\n")
    (tmp_path / "my_lab" / "data.py").write_text("import numpy\nimport json\nfrom .sub.seeds import SEED\n"
                                                 "def load(split):\n    return SEED\n")
    (tmp_path / "my_lab" / "unused.py").write_text("X = 1\n")
    (tmp_path / "figures_src" / "lab.py").write_text(textwrap.dedent('''
        import numpy as np
        FIGURES = {"lab/ig": {"make": "make_ig"}}
        def test_digits():
            from my_lab.data import load
            return load("test")
        def make_ig(ctx):
            return {"n": test_digits()}
    '''))
    spec = discover_figures(tmp_path / "figures_src", tmp_path)["lab/ig"]
    own = {str(p.relative_to(tmp_path)) for p in spec.engine_files}
    assert own == {"my_lab/__init__.py", "my_lab/data.py", "my_lab/sub/__init__.py", "my_lab/sub/seeds.py"}
    manifest = Manifest(tmp_path / "manifest.json")
    manifest.figures["lab/ig"] = {"inputs": figure_inputs(spec, "quick", tmp_path, tmp_path), "outputs": {}}
    assert stale_reason(spec, figure_inputs(spec, "quick", tmp_path, tmp_path), manifest, tmp_path) is None
    (tmp_path / "my_lab" / "sub" / "seeds.py").write_text("SEED = 1\n")   # a new split seed
    spec = discover_figures(tmp_path / "figures_src", tmp_path)["lab/ig"]
    inputs = figure_inputs(spec, "quick", tmp_path, tmp_path)
    assert stale_reason(spec, inputs, manifest, tmp_path) == "imported module my_lab/sub/seeds.py changed"


def test_a_helper_modules_top_level_code_is_an_input_of_every_figure_whose_script_imports_it(tmp_path):
    """Importing a module runs its top-level code (an rcParams line restyles every figure), so it
    is an input of each figure of a script that imports it, directly or through another module;
    the bodies of its functions are inputs only of the figures that reach them."""
    from figures_src.runner.staleness import Manifest, figure_inputs, stale_reason
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "my_lab").mkdir()
    (tmp_path / "my_lab" / "__init__.py").write_text("")
    (tmp_path / "my_lab" / "util.py").write_text("DIGITS = 2\n")
    analysis = "from my_lab.util import DIGITS\n\ndef summarise(x):\n    return round(x, DIGITS)\n"
    (tmp_path / "my_lab" / "analysis.py").write_text(analysis)
    (tmp_path / "figures_src" / "lab.py").write_text(textwrap.dedent('''
        from my_lab import analysis as A
        FIGURES = {"lab/a": {"make": "make_a"}, "lab/b": {"make": "make_b"}}
        def make_a(ctx):
            return {"x": A.summarise(1.234)}
        def make_b(ctx):
            return {"y": 1}
    '''))

    def reasons():
        specs = discover_figures(tmp_path / "figures_src", tmp_path)
        return {i: stale_reason(spec, figure_inputs(spec, "quick", tmp_path, tmp_path), manifest, tmp_path)
                for i, spec in specs.items()}

    manifest = Manifest(tmp_path / "manifest.json")
    for figure_id, spec in discover_figures(tmp_path / "figures_src", tmp_path).items():
        manifest.figures[figure_id] = {"inputs": figure_inputs(spec, "quick", tmp_path, tmp_path), "outputs": {}}
    assert reasons() == {"lab/a": None, "lab/b": None}
    (tmp_path / "my_lab" / "analysis.py").write_text(     # comments and docstrings: no figure remade
        analysis.replace("def summarise(x):", "def summarise(x):  # to the shown digits\n    \"\"\"Rounded.\"\"\""))
    assert reasons() == {"lab/a": None, "lab/b": None}
    (tmp_path / "my_lab" / "analysis.py").write_text(analysis.replace("round(x, DIGITS)", "round(x, DIGITS + 1)"))
    assert reasons() == {"lab/a": "imported module my_lab/analysis.py changed", "lab/b": None}
    (tmp_path / "my_lab" / "analysis.py").write_text(
        'import matplotlib\nmatplotlib.rcParams["lines.linewidth"] = 8\n' + analysis)
    assert reasons()["lab/b"] == "top-level code of my_lab/analysis.py changed (it runs when the script imports it)"
    (tmp_path / "my_lab" / "analysis.py").write_text(analysis)
    (tmp_path / "my_lab" / "util.py").write_text("import numpy\nnumpy.set_printoptions(precision=3)\nDIGITS = 2\n")
    assert reasons()["lab/b"] == "top-level code of my_lab/util.py changed (it runs when the script imports it)"


def test_a_params_change_names_each_changed_param_old_and_new(workspace):
    scripts = workspace[0]
    assert run_runner(workspace).returncode == 0
    (scripts / "alpha.py").write_text(ALPHA.replace('{"quick": {"n": 3}', '{"quick": {"n": 4, "step": 2}'))
    listing = run_runner(workspace, "--list")
    assert "stale  alpha/one: params changed (n 3 -> 4, step (none) -> 2)" in listing.stdout, listing.stdout


def test_a_model_whose_rebuild_failed_is_not_said_to_be_rebuilt_first(tmp_path):
    """After the zoo could not rebuild a model (weights that do not fit the architecture), the
    figures reading it say so, not that it is rebuilt first; fixed weights then remake them."""
    import torch
    from tests.test_zoo_inputs import listed, run_figures, runner_project, save_own_weights
    runner_project(tmp_path)
    assert run_figures(tmp_path).returncode == 0
    torch.save({"features.0.weight": torch.zeros(2, 3, 3, 3)}, tmp_path / "my_weights" / "tiny.pt")
    broken = run_figures(tmp_path)
    assert broken.returncode == 1 and "its model 'own' could not be built" in broken.stderr
    why = listed(run_figures(tmp_path, "--list"))["own/head"]
    assert why == ("checkpoint ../my_weights/tiny.pt changed (model own: its rebuild failed (the next `make "
                   "slides` or `make figures` tries again and prints why); fix that, and the figure is remade)"), why
    save_own_weights(tmp_path, seed=3)
    assert listed(run_figures(tmp_path, "--list"))["own/head"].endswith("(model own: rebuilt first)")
    assert run_figures(tmp_path).returncode == 0


def test_a_copied_script_names_both_places_of_its_duplicate_id_and_the_fix(tmp_path):
    (tmp_path / "featvis.py").write_text('FIGURES = {\n    "featvis/a": {"make": "f"},\n}\n')
    (tmp_path / "v_featvis.py").write_text('\n\nFIGURES = {\n    "featvis/a": {"make": "f"},\n}\n')
    with pytest.raises(FigureSpecError) as error:
        discover_figures(tmp_path, REPO)
    assert (error.value.path, error.value.line) == (tmp_path / "v_featvis.py", 4)
    assert str(error.value).startswith(f"{tmp_path / 'v_featvis.py'}:4: figure id 'featvis/a' is also "
                                       f"declared at {tmp_path / 'featvis.py'}:2")
    assert "ids of their own (e.g. 'my-featvis/a')" in str(error.value)
    with pytest.raises(FigureSpecError) as quick:                      # what make check reads
        declared_ids(tmp_path)
    assert str(quick.value) == str(error.value)
