"""A deck makes only the figures it shows; failures and profile switches are reported briefly.

Real runner and decktools.figures subprocesses over figure scripts written into a temporary
folder (the runner's --scripts-dir/--figures-dir/--models-dir), and the repository's own decks
for which figures they select.
"""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from figures_src.runner import declared_ids

REPO = Path(__file__).resolve().parent.parent

SCRIPT = '''
import matplotlib.pyplot as plt

FIGURES = {FIGURES}

def make(ctx):
    for name in ctx.declared_models:     # a figure reads each model it declares
        ctx.model_meta(name)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ctx.save(fig)
    return {"id": ctx.figure_id, "scores": {"top1": 0.5}}
'''

FAILING = '''
FIGURES = {"broken/plot": {"make": "make_plot"}}

def load_numbers(path):
    return {"value": 1 / 0}

def make_plot(ctx):
    import json
    numbers = load_numbers(ctx.staging_dir)
    return json.loads("{not json")
'''


@pytest.fixture
def workspace(tmp_path):
    scripts, figures, models = tmp_path / "scripts", tmp_path / "talk" / "public" / "figures", tmp_path / "models"
    scripts.mkdir()
    models.mkdir()
    for family in ("alpha", "beta"):
        ids = {f"{family}/{name}": {"make": "make"} for name in ("one", "two", "three")}
        (scripts / f"{family}.py").write_text(SCRIPT.replace("{FIGURES}", repr(ids)))
    return scripts, figures, models


def dirs(workspace) -> list[str]:
    scripts, figures, models = workspace
    return ["--scripts-dir", str(scripts), "--figures-dir", str(figures), "--models-dir", str(models),
            "--profile", "quick", "--device", "cpu"]


def run_module(module: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def made_ids(result) -> set[str]:
    return {line.split()[1] for line in (result.stdout + result.stderr).splitlines() if line.startswith("made ")}


def write_deck(workspace, body: str, page: str) -> Path:
    talk = workspace[1].parent.parent
    (talk / "pages").mkdir(parents=True, exist_ok=True)
    (talk / "pages" / "part.md").write_text(page)
    deck = talk / "mytalk.md"
    deck.write_text("---\ntitle: Mine\n---\n" + textwrap.dedent(body) + "\n---\nsrc: ./pages/part.md\n---\n")
    return deck


def test_a_deck_makes_only_the_figures_it_shows(workspace):
    deck = write_deck(workspace, """
        # One
        ![first](/figures/alpha/two.png)

        ```md
        ![code is not a slide](/figures/alpha/one.png)
        ```
        """, '# Part\n\nTop-1 is <Measured fig="beta/three" value="scores.top1"/>.\n')
    result = run_module("decktools.figures", str(deck), *dirs(workspace))
    assert result.returncode == 0, result.stderr
    assert made_ids(result) == {"alpha/two", "beta/three"}
    again = run_module("decktools.figures", str(deck), *dirs(workspace))
    assert made_ids(again) == set() and "0 made, 2 up to date" in again.stdout
    everything = run_module("figures_src.runner", *dirs(workspace))   # `make figures`: all of them
    assert made_ids(everything) == {f"{f}/{n}" for f in ("alpha", "beta") for n in ("one", "two", "three")} - {
        "alpha/two", "beta/three"}


def test_a_deck_naming_an_undeclared_figure_gets_did_you_mean_and_makes_nothing(workspace):
    deck = write_deck(workspace, "\n# One\n![x](/figures/alpha/too.png)\n",
                      '# Part\n<Measured fig="beta/thre" value="id"/>\n')
    result = run_module("decktools.figures", str(deck), *dirs(workspace))
    assert result.returncode == 2 and made_ids(result) == set()
    assert f"{deck}:6:" in result.stderr and "'alpha/too' (did you mean alpha/two" in result.stderr
    assert "part.md:2:" in result.stderr and "'beta/thre' (did you mean beta/three" in result.stderr


def test_runner_ids_are_exact_and_unknown_ones_get_did_you_mean(workspace):
    result = run_module("figures_src.runner", *dirs(workspace), "--ids", "alpha/one,beta/tw")
    assert result.returncode == 2 and "no figure script declares 'beta/tw' (did you mean beta/two" in result.stderr
    result = run_module("figures_src.runner", *dirs(workspace), "--ids", "alpha/one")
    assert made_ids(result) == {"alpha/one"}


def test_a_profile_change_is_reported_once(workspace):
    assert run_module("figures_src.runner", *dirs(workspace)).returncode == 0
    full = run_module("figures_src.runner", *dirs(workspace)[:-4], "--profile", "full", "--device", "cpu", "--jobs", "3")
    assert made_ids(full) == {f"{f}/{n}" for f in ("alpha", "beta") for n in ("one", "two", "three")}
    lines = (full.stdout + full.stderr).splitlines()
    assert [line for line in lines if "profile" in line] == ["figures: profile changed from quick to full: 6 figures stale"]


def line_of(source: str, text: str) -> int:
    return next(number for number, line in enumerate(source.splitlines(), 1) if text in line)


def test_a_failing_figure_shows_the_users_own_frames(workspace):
    scripts = workspace[0]
    (scripts / "broken.py").write_text(FAILING)
    result = run_module("figures_src.runner", *dirs(workspace), "--ids", "broken/plot")
    assert result.returncode == 1
    script = scripts / "broken.py"
    call, division = line_of(FAILING, "numbers = load_numbers("), line_of(FAILING, "1 / 0")
    assert "FAILED broken/plot: ZeroDivisionError: division by zero" in result.stderr
    assert f"{script}:{call} in make_plot" in result.stderr
    assert f"{script}:{division} in load_numbers" in result.stderr
    assert "figures_src/runner/" not in result.stderr and "site-packages" not in result.stderr


def test_in_a_log_file_the_failed_line_is_a_line_of_its_own(workspace, tmp_path):
    """Output to a file (make slides > log 2>&1): no progress bar redrawn with \\r before FAILED."""
    (workspace[0] / "broken.py").write_text(FAILING)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "figures_src.runner", *dirs(workspace), "--ids", "broken/plot"],
                       cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_bytes().decode()      # read_text() would turn each \r into a line end
    assert "\r" not in text
    assert any(line.startswith("FAILED broken/plot: ZeroDivisionError") for line in text.splitlines())


def test_an_error_raised_inside_a_library_names_the_user_line_and_where_it_was_raised(workspace):
    scripts = workspace[0]
    (scripts / "broken.py").write_text(FAILING.replace("1 / 0", "1"))
    result = run_module("figures_src.runner", *dirs(workspace), "--ids", "broken/plot")
    assert "JSONDecodeError" in result.stderr
    assert f"{scripts / 'broken.py'}:{line_of(FAILING, 'json.loads(')} in make_plot" in result.stderr
    assert re.search(r"raised in .*json/decoder\.py:\d+ in raw_decode", result.stderr)


def run_in(folder: Path, module: str, *args) -> subprocess.CompletedProcess:
    """A runner command run from a speaker's project folder, as `make` runs it from theirs."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=folder, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_script_that_does_not_parse_stops_only_the_runs_that_may_need_its_figures(workspace):
    """One line naming the script's file:line, never a traceback; a deck (or --ids) whose figures
    other scripts declare is made with a warning, a run of every figure makes nothing."""
    scripts = workspace[0]
    root = scripts.parent
    source = SCRIPT.replace("{FIGURES}", repr({"mylab/probe": {"make": "make"}})) + "def broken(:\n"
    (scripts / "mylab.py").write_text(source)
    where = f"scripts/mylab.py:{line_of(source, 'def broken(:')}: invalid syntax: `def broken(:`"
    options = dirs(workspace)
    others = write_deck(workspace, "\n# One\n![x](/figures/alpha/two.png)\n", "# Part\n")
    built = run_in(root, "decktools.figures", str(others), *options)
    assert built.returncode == 0 and made_ids(built) == {"alpha/two"}, built.stderr
    assert f"warning: {where}; fix that line" in built.stderr and "Traceback" not in built.stderr
    everything = run_in(root, "figures_src.runner", *options)
    assert everything.returncode == 2 and made_ids(everything) == set()
    assert everything.stderr.strip().splitlines() == [
        f"error: {where}; fix that line (until the script parses, the runner cannot read which "
        "figures it declares); no figure was made"]
    mine = write_deck(workspace, "\n# One\n![x](/figures/mylab/probe.png)\n", "# Part\n")
    stopped = run_in(root, "decktools.figures", str(mine), *options)
    assert stopped.returncode == 2 and made_ids(stopped) == set() and "Traceback" not in stopped.stderr
    assert "no figure script declares figure 'mylab/probe'" in stopped.stderr
    assert f"error: {where}; fix that line" in stopped.stderr and "it may declare" in stopped.stderr
    named = run_in(root, "figures_src.runner", *options, "--ids", "alpha/one")
    assert named.returncode == 0 and made_ids(named) == {"alpha/one"} and f"warning: {where}" in named.stderr


ZOO = """models:
  my-digitnet:
    {architecture: MLP, kwargs: {hidden: 8}, dataset: digits, seed: 0, epochs: 1, batch_size: 64, learning_rate: 0.01}
"""


def test_a_misspelt_model_is_refused_at_planning_with_the_script_line_and_the_nearest_zoo_name(workspace):
    """Before any model or figure is built: `make models` cannot help, so it is not the advice."""
    scripts, _, models = workspace
    root = scripts.parent
    (models / "zoo.yaml").write_text(ZOO)
    (models / "mine").mkdir()                                  # placed by hand, not in the zoo: fine
    (models / "mine" / "checkpoint.pt").write_bytes(b"weights")
    (models / "mine" / "meta.json").write_text('{"config": {"name": "mine"}}')
    declared = {"mylab/probe": {"make": "make", "models": ["my-digitnett"]},
                "mylab/own": {"make": "make", "models": ["mine"]}}
    source = SCRIPT.replace("{FIGURES}", "{\n    " + ",\n    ".join(
        f"{k!r}: {v!r}" for k, v in declared.items()) + "\n}")
    (scripts / "mylab.py").write_text(source)
    message = (f"cannot mylab/probe: its FIGURES entry (scripts/mylab.py:{line_of(source, 'mylab/probe')}) "
               "declares model 'my-digitnett', which models/zoo.yaml has no entry for (did you mean "
               "my-digitnet?): fix the name in its \"models\", or add the model to models/zoo.yaml")
    listing = run_in(root, "figures_src.runner", *dirs(workspace), "--only", "mylab/*", "--list")
    assert message in listing.stdout and "stale  mylab/own: never made" in listing.stdout
    result = run_in(root, "figures_src.runner", *dirs(workspace), "--only", "mylab/*")
    assert result.returncode == 1 and made_ids(result) == {"mylab/own"}
    assert result.stderr.count(message) == 1 and "make models" not in result.stderr
    deck = write_deck(workspace, "\n# One\n![x](/figures/mylab/probe.png)\n", "# Part\n")
    slides = run_in(root, "decktools.figures", str(deck), *dirs(workspace))
    assert slides.returncode == 1 and message in slides.stderr and "Traceback" not in slides.stderr


def test_a_failing_import_names_the_scripts_line_and_what_to_do(workspace):
    scripts = workspace[0]
    source = "import json\nimport seaborn_missing\n" + SCRIPT.replace("{FIGURES}", repr({"mylab/x": {"make": "make"}}))
    (scripts / "mylab.py").write_text(source)
    result = run_in(scripts.parent, "figures_src.runner", *dirs(workspace), "--ids", "mylab/x")
    assert result.returncode == 1
    assert ("FAILED mylab/x: ModuleNotFoundError: No module named 'seaborn_missing' (at scripts/mylab.py:2); "
            "install the package that provides 'seaborn_missing' into the venv") in result.stderr
    assert "or fix the import" in result.stderr and "Traceback" not in result.stderr


def shown_by(deck: Path) -> set[str]:
    """An independent reading of a deck's figure ids: a regex over it and the pages it imports."""
    text = deck.read_text()
    for imported in re.findall(r"^src:\s*(\S+)", text, re.MULTILINE):
        text += (deck.parent / imported).read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return set(re.findall(r"/figures/([\w-]+/[\w-]+)\.\w+", text)) | set(re.findall(r'fig="([^"]+)"', text))


def test_a_cold_workshop_build_selects_only_the_workshops_figures(tmp_path):
    deck = REPO / "talk" / "workshop.md"
    listing = run_module("decktools.figures", str(deck), "--figures-dir", str(tmp_path / "figures"),
                         "--models-dir", str(tmp_path / "models"), "--profile", "quick", "--list")
    assert listing.returncode == 0, listing.stderr
    selected = {line.split()[1].rstrip(":") for line in listing.stdout.splitlines()
                if line.startswith(("stale ", "cannot "))}
    assert selected == shown_by(deck)
    assert selected < set(declared_ids(REPO / "figures_src"))       # not the whole repository's


def test_make_list_says_which_of_a_decks_figures_are_stale_and_makes_none():
    """`make deck-figures DECK=... LIST=1`: the deck's own figures, each stale one with why."""
    deck = REPO / "talk" / "workshop.md"
    result = subprocess.run(["make", "--no-print-directory", "deck-figures", "DECK=talk/workshop.md", "PROFILE=quick",
                             "LIST=1", "DEVICE=cpu"],     # no "make[1]: Leaving directory" under `make test`
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    counted = re.fullmatch(r"(\d+) stale, (\d+) up to date", lines[-1])
    assert counted, lines[-1]
    from decktools.figures import deck_figure_ids
    from decktools.markdown import read_deck
    assert int(counted[1]) + int(counted[2]) == len(deck_figure_ids(read_deck(deck)))   # that deck's, not all
    assert all(re.match(r"stale  \S+: \S", line) for line in lines if line.startswith("stale"))
    assert not any(line.startswith("made ") or re.match(r"figures: \d+ made", line) for line in lines)  # none made


def test_jobs_that_is_not_one_or_more_is_one_message_before_anything_runs():
    """JOBS=0 was taken as 1 without a word; now make stops with one line naming it, as the
    runner and the zoo refuse --jobs 0 themselves."""
    for jobs in ("0", "-1", "two"):
        result = subprocess.run(["make", "--no-print-directory", "figures", f"JOBS={jobs}", "LIST=1"], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and result.stdout == ""
        assert f"JOBS={jobs}: give how many figures or models to make at once" in result.stderr
    for module in ("figures_src.runner", "mechinterp.models.zoo"):
        # --list, or a name no zoo has: had the check gone, neither would make anything
        refused = run_module(module, "--jobs", "0", *(["--list"] if module == "figures_src.runner"
                                                       else ["--names", "no-such-model"]))
        assert refused.returncode == 2 and "--jobs 0: give how many" in refused.stderr
        assert "Traceback" not in refused.stderr
