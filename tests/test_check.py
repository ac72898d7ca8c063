"""The deck check and the prepared deck: every error class reported with file:line:column.

Decks and bibliographies are real files written into a temporary talk-like folder; the check
runs as `make check` would (python -m decktools.check) where the exit code matters.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from decktools.check import check_deck
from decktools.markdown import read_deck
from decktools.mdscan import first_heading
from decktools.prepare import prepare_deck
from decktools.problems import errors
from decktools.rehearse import plan_deck, slide_title, works_cited
from tests.talkdir import link_node_modules

REPO = Path(__file__).resolve().parent.parent

BIB = textwrap.dedent("""\
    @article{alpha2020,
      author = {Alpha, Ann and Beta, Bob and Gamma, Gil},
      title = {A Study},
      journal = {Distill},
      year = {2020},
      doi = {10.23915/distill.00024.001}
    }

    @inproceedings{delta2019,
      author = {Delta, Dee and Epsilon, Eve},
      title = {Another Study},
      booktitle = {ICML},
      year = {2019}
    }
    """)

HEAD = "---\ntitle: Test\ntheme: seriph\n---\n"


def write_deck(tmp_path: Path, body: str, bib: str = BIB, extra_files: dict | None = None) -> Path:
    talk = tmp_path / "talk"
    (talk / "public" / "figures" / "demo").mkdir(parents=True)
    (talk / "public" / "figures" / "demo" / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (talk / "public" / "figures" / "demo" / "plot.json").write_text(json.dumps({"accuracy": 0.98765, "layers": [{"cka": 0.5}]}))
    (tmp_path / "citations.bib").write_text(bib)
    for name, text in (extra_files or {}).items():
        (talk / name).parent.mkdir(parents=True, exist_ok=True)
        (talk / name).write_text(text)
    deck = talk / "slides.md"
    deck.write_text(HEAD + textwrap.dedent(body))
    return deck


def problems_of(deck: Path, level="error"):
    report = check_deck(deck, deck.parent.parent / "citations.bib")
    return [p for p in report.problems if p.level == level]


def problems_of_profile(deck: Path, profile: str):
    report = check_deck(deck, deck.parent.parent / "citations.bib", profile=profile)
    return [p for p in report.problems if p.level == "error"]


# dedented here: GOOD + "..." is not indented alike, and 4 indented spaces are a code block
GOOD = textwrap.dedent("""
    # Features [@alpha2020; @delta2019]

    ![a plot](/figures/demo/plot.png) Accuracy <Measured fig="demo/plot" value="accuracy" percent="true" digits="1"/>.

    ```python
    cite = "[@not_a_key]"   # code is text, never a citation
    ```
    Inline `<Cite bref="nope"/>` is code too. <Cite input="10.23915/DISTILL.00024.001"/>

    <!--
    Notes cite [@delta2019].
    -->
    """)


def test_good_deck_passes_without_warnings(tmp_path):
    deck = write_deck(tmp_path, GOOD)
    assert problems_of(deck) == [] and problems_of(deck, "warning") == []


@pytest.mark.parametrize("body, column, message", [
    ("\n# Hi [@alpha2021]\n", 6, "unknown citation key 'alpha2021' (did you mean alpha2020?)"),
    ('\n<Cite bref="ghost"/>\n', 1, "unknown citation key 'ghost'"),
    ("\nAs @alpha2021 showed\n", 4, "unknown citation key 'alpha2021' (did you mean alpha2020?)"),
    ("\nSee [see @alpha2021, p. 3]\n", 5, "unknown citation key 'alpha2021' (did you mean alpha2020?)"),
    ('\nSee <Cite input="10.1000/elsewhere"/>\n', 5, "DOI 10.1000/elsewhere is not the doi"),
    ('\nSee <Cite input="https://doi.org/10.1000/ELSEWHERE"/>\n', 5, "(with doi = {10.1000/elsewhere})"),
    ('\n<Cite bref="alpha2020,delta2019"/>\n', 1, "names several keys, but bref takes one: write one <Cite"),
    ("\n![x](https://example.com/cat.png)\n", 6, "remote asset https://example.com/cat.png"),
    ('\n<img src="//cdn.example.com/a.png"/>\n', 11, "remote asset //cdn.example.com/a.png"),
    ("\n![x](/figures/demo/missing.png)\n", 6, "not found"),
    ('\n<div style="background: url(./nothere.jpg)"></div>\n', 29, "asset ./nothere.jpg not found"),
    ('\n<Measured fig="demo/plot" value="accuracy.top5"/>\n', 1, "no 'top5' here"),
    ('\n<Measured fig="demo/absent" value="x"/>\n', 1, "has no numbers file"),
])
def test_each_error_names_file_line_column_and_fix(tmp_path, body, column, message):
    deck = write_deck(tmp_path, GOOD + "\n---\n" + body)
    found = problems_of(deck)
    assert len(found) == 1, found
    problem = found[0]
    expected_line = deck.read_text().split("\n").index(body.strip()) + 1
    assert (problem.path, problem.line, problem.column) == (deck, expected_line, column)
    assert message in problem.message


def test_an_at_sign_that_is_no_citation_stays_text(tmp_path):
    """Only a bib key or a name with a year is a narrative citation: not an e-mail address, an npm
    scope, a Vue directive, a handle, nor an escaped \\@."""
    deck = write_deck(tmp_path, GOOD + '\nMail me@uni.edu, run @slidev/cli, <b @click="go" :x="@y">x</b>, '
                                       "ask @vue or @someone, \\@alpha2021.\n")
    assert problems_of(deck) == []


def test_frontmatter_background_remote_and_missing(tmp_path):
    deck = write_deck(tmp_path, GOOD + "\n---\nlayout: cover\nbackground: https://source.unsplash.com/x\n---\n\n# C\n"
                      "\n---\nbackground: /nowhere.jpg\n---\n\n# D\n")
    messages = [p.message for p in problems_of(deck)]
    assert any("remote asset https://source.unsplash.com/x" in m for m in messages)
    assert any("asset /nowhere.jpg not found" in m for m in messages)


@pytest.mark.parametrize("bib, message", [
    (BIB + "@article{alpha2020, author={X}, title={Dup}, year={2021}}\n", "duplicate key 'alpha2020'"),
    (BIB + "@article{zeta2018, title={No author}, journal={J}, year={2018}}\n", "'zeta2018' is missing author"),
    (BIB + "@online{page, author={P, P.}, title={A page}}\n",
     "'page' is missing year: add `year = {...}` (or biblatex's `date = {YYYY-MM-DD}`)"),
    (BIB + "@article{late, author={L, L.}, title={T}, journal={J},\n date={June 2016}}\n",
     "'late': date {June 2016} is not a biblatex date and would print as n.d.: write it as YYYY"),
    (BIB + "@misc{eta2018, author={Eta, E.}, title={T}\n year={2018}}\n", "a comma is missing"),
    (BIB + "@article{broken, author = {Unclosed, title = {x}, year = {2020}\n", "BibTeX syntax error"),
])
def test_bibliography_errors(tmp_path, bib, message):
    deck = write_deck(tmp_path, GOOD, bib=bib)
    found = problems_of(deck)
    assert any(message in p.message and p.path.name == "citations.bib" for p in found), found


def test_missing_bib_and_missing_deck(tmp_path):
    deck = write_deck(tmp_path, GOOD)
    (tmp_path / "citations.bib").unlink()
    [missing] = problems_of(deck)        # the keys and DOI it cites are not each called unknown
    assert missing.message.startswith("bibliography not found: create it") and "--bib" in missing.message
    report = check_deck(tmp_path / "talk" / "nope.md", REPO / "citations.bib")
    assert "deck not found" in errors(report.problems)[0].message


def test_malformed_frontmatter_names_the_line(tmp_path):
    deck = write_deck(tmp_path, GOOD + "\n---\nlayout: [two-cols\ntitle: x\n---\n\n# Bad\n")
    found = problems_of(deck)
    assert len(found) == 1 and "malformed frontmatter" in found[0].message
    assert deck.read_text().split("\n")[found[0].line - 1].startswith(("layout", "title"))


def test_imported_files_are_checked_and_cycles_refused(tmp_path):
    deck = write_deck(tmp_path, GOOD + "\n---\nsrc: ./pages/part.md\n---\n",
                      extra_files={"pages/part.md": "# Part\n\nCites [@nobody2000].\n"})
    found = problems_of(deck)
    assert len(found) == 1 and found[0].path.name == "part.md" and found[0].line == 3
    (deck.parent / "pages" / "part.md").write_text("---\nsrc: ../slides.md\n---\n")
    assert "imports itself" in problems_of(deck)[0].message


def test_uncited_entries_warn_but_any_sibling_deck_counts(tmp_path):
    deck = write_deck(tmp_path, "\n# Only [@alpha2020]\n")
    warnings = problems_of(deck, "warning")
    assert [w.message.split("'")[1] for w in warnings] == ["delta2019"]
    (deck.parent / "workshop.md").write_text(HEAD + "\n# W [@delta2019]\n")
    assert problems_of(deck, "warning") == []


def test_check_command_exit_codes(tmp_path):
    good = write_deck(tmp_path / "a", GOOD)
    bad = write_deck(tmp_path / "b", "\n# [@missing]\n")
    run = lambda deck: subprocess.run([sys.executable, "-m", "decktools.check", str(deck), "--bib",
                                       str(deck.parent.parent / "citations.bib")],
                                      cwd=REPO, capture_output=True, text=True)
    ok, failed = run(good), run(bad)
    assert ok.returncode == 0 and "0 errors, 0 warnings" in ok.stdout and "(1 file)" in ok.stdout
    assert "check: 1 error, 2 warnings in" in failed.stdout     # alpha2020 and delta2019 are cited by no deck
    (bad.parent / "b.md").write_text(HEAD + "\n# [@delta2019]\n")
    assert "check: 1 error, 1 warning in" in run(bad).stdout
    assert failed.returncode == 1 and f"{bad}:6:3: error: unknown citation key 'missing'" in failed.stderr


def test_prepare_rewrites_citations_numbers_and_imports_but_not_code(tmp_path):
    deck = write_deck(tmp_path, GOOD + "\n---\nsrc: ./pages/part.md\n---\n",
                      extra_files={"pages/part.md": "# Part [@delta2019]\n"})
    prepared = prepare_deck(deck, tmp_path / "citations.bib")
    text = prepared.read_text()
    # APA: three or more authors -> "et al.", two -> "&", several works sorted in one parenthesis
    both = '<span class="citation" data-keys="alpha2020 delta2019" v-pre>(Alpha et al., 2020; Delta &amp; Epsilon, 2019)</span>'
    assert both in text and "<Cite" not in text.replace('`<Cite bref="nope"/>`', "")
    assert 'cite = "[@not_a_key]"' in text and 'Inline `<Cite bref="nope"/>`' in text
    assert 'data-keys="alpha2020" v-pre>(Alpha et al., 2020)</span>' in text.split("is code too.")[1]  # DOI -> key
    assert '<span class="measured" title="demo/plot: accuracy">98.8%</span>' in text
    assert "Notes cite (Delta & Epsilon, 2019)." in text                          # notes: plain text
    assert "src: ./pages/part.prepared.md" in text and "provider: none" in text and "favicon: /favicon.svg" in text
    assert 'data-keys="delta2019" v-pre>(Delta &amp; Epsilon, 2019)</span>' in (deck.parent / "pages" / "part.prepared.md").read_text()
    assert not (deck.parent / "public" / "biblio").exists()                       # nothing generated there


def test_prepare_refuses_a_failing_deck_and_writes_nothing(tmp_path):
    deck = write_deck(tmp_path, "\n# [@missing]\n")
    with pytest.raises(SystemExit, match="fails the check"):
        prepare_deck(deck, tmp_path / "citations.bib")
    assert not (deck.parent / "slides.prepared.md").exists()


# --- regressions found by the fuzz tests (tests/test_fuzz_decks.py, tests/test_fuzz_bib.py) ---

def test_single_quoted_attributes_are_read(tmp_path):
    deck = write_deck(tmp_path, "\n# Q <Cite bref='alpha2020'/> <Cite bref='ghost'/>\n\n"
                      "Accuracy <Measured fig='demo/plot' value='nothing'/>\n\n<Cite bref=\"delta2019\"/>\n")
    found = sorted((p.line, p.column, p.message.split(":")[0]) for p in problems_of(deck))
    ghost_line = deck.read_text().split("\n").index("# Q <Cite bref='alpha2020'/> <Cite bref='ghost'/>") + 1
    assert found == [(ghost_line, 30, "unknown citation key 'ghost'"), (ghost_line + 2, 10, "value 'nothing'")]


@pytest.mark.parametrize("body", [
    "\n```python\nan unclosed fence ends with its slide\n\n---\n\n# [@ghost]\n",        # as Slidev cuts it
    "\n# A\n\n<!--\n```\n-->\n\n[@ghost]\n",              # a fence in a comment ends with the comment
    "\n# Literal ``[@ghost]` backticks\n",                # `` never closed: no code span (CommonMark)
    "\n# Escaped \\`[@ghost]` backtick\n",
])
def test_citations_after_code_that_is_not_code_are_checked(tmp_path, body):
    deck = write_deck(tmp_path, "\n# Start [@alpha2020; @delta2019]\n\n---\n" + body)
    found = [p for p in problems_of(deck) if "code fence is not closed" not in p.message]
    assert [p.message.split(":")[0] for p in found] == ["unknown citation key 'ghost'"]
    assert deck.read_text().split("\n")[found[0].line - 1][found[0].column - 1:].startswith("[@ghost]")


def test_a_fence_closes_only_at_a_bare_fence_and_comments_hide_separators(tmp_path):
    deck = write_deck(tmp_path, "\n# A [@alpha2020; @delta2019]\n\n```\ncode\n```python\n[@ghost]\n```\n\n"
                      "<!--\nnotes\n---\nmore notes\n-->\n\n---\n\n# B\n")
    assert problems_of(deck) == []
    assert len(check_deck(deck, tmp_path / "citations.bib").deck.slides) == 2   # headmatter slide + B


def test_unreadable_decks_and_imports_are_problems_not_crashes(tmp_path):
    deck = write_deck(tmp_path, GOOD + "\n---\nsrc: ./pages\n---\n", extra_files={"pages/x.md": "# X\n"})
    found = problems_of(deck)
    assert len(found) == 1 and "src: ./pages is not a file" in found[0].message
    (deck.parent / "latin1.md").write_bytes(b"---\ntitle: caf\xe9\n---\n")          # a sibling deck
    deck.write_bytes(HEAD.encode() + b"\n# caf\xe9\n")
    found = problems_of(deck)
    assert [(p.path, p.line) for p in found] == [(deck, HEAD.count("\n") + 2)] and "not UTF-8 (byte 0xe9)" in found[0].message


@pytest.mark.parametrize("appended, line, message", [
    ("@misc{zeta, author={Z}, title={caf\xe9}, year={2018}}\n", 1, "not UTF-8 (byte 0xe9)"),
    ("@misc{, author={Z}, title={T}, year={2018}}\n", 1, "entry without a key"),
    ("\n@ misc{zeta, author={Z}}\n", 2, "is not an entry and is ignored"),
    ("@misc{zeta, author={Z}, title={T}, year={2018}\n", 1, "BibTeX syntax error (Unexpectedly reached end"),
])
def test_malformed_bib_problems_name_the_line(tmp_path, appended, line, message):
    deck = write_deck(tmp_path, GOOD)
    (tmp_path / "citations.bib").write_bytes((BIB + appended).encode("latin-1"))
    found = [p for p in problems_of(deck) if p.path.name == "citations.bib"]
    assert [(p.line, message in p.message) for p in found] == [(BIB.count("\n") + line, True)], found



def test_a_malformed_bib_prints_only_our_message_not_bibtexparsers_log(tmp_path):
    """bibtexparser logs the block it gave up on, numbering lines from 0; only our line shows."""
    deck = write_deck(tmp_path, GOOD)
    (tmp_path / "citations.bib").write_text(BIB + "@misc{zeta, author={Z}, title={T}, year={2018\n\n"
                                            "@misc{eta, author={E}, title={T}, year={2019}}\n")
    result = subprocess.run([sys.executable, "-m", "decktools.check", str(deck), "--bib", str(tmp_path / "citations.bib")],
                            cwd=REPO, capture_output=True, text=True)
    line = BIB.count("\n") + 1
    assert result.returncode == 1 and f"citations.bib:{line}:1: error: BibTeX syntax error (" in result.stderr
    assert "Parsing of" not in result.stderr + result.stdout and "aborted on line" not in result.stderr

@pytest.mark.parametrize("tag, message", [
    ('<Measured fig="demo/plot" value="accuracy" digits="x"/>', 'digits="x": write a whole number'),
    ("<Measured fig='demo/plot' value='accuracy' digits='-1'/>", "digits=\"-1\": write a whole number"),
    ('<Measured fig="demo/broken" value="accuracy"/>', "is not JSON"),
    ('<Measured fig="demo/nan" value="mean_norm" digits="3"/>',       # a figure's NaN, written as null
     "value 'mean_norm' of figure 'demo/nan' is null: the figure returned NaN, infinity or None there"),
    ('<Measured fig="demo/plot" value="layers.0"/>',
     "value 'layers.0' of figure 'demo/plot' is a dict, not one number: quote one of its items (layers.0.<one of: cka>)"),
    ('<Measured fig="demo/plot" value="layers"/>',
     "value 'layers' of figure 'demo/plot' is a list holding a dict: quote one item (layers.<one of: 0>)"),
])
def test_bad_measured_attributes_and_numbers_files_are_problems(tmp_path, tag, message):
    deck = write_deck(tmp_path, GOOD + "\n---\n\n" + tag + "\n")
    (deck.parent / "public" / "figures" / "demo" / "broken.json").write_text('{"accuracy": ')
    (deck.parent / "public" / "figures" / "demo" / "nan.json").write_text('{"mean_norm": null}')
    found = problems_of(deck)
    assert [(p.line, message in p.message) for p in found] == [(len(deck.read_text().split("\n")) - 1, True)], found


DEMO_SCRIPT = 'FIGURES = {"demo/plot": {"make": "f"}, "mytalk/cka": {"make": "g"}}\n'


@pytest.mark.parametrize("body, message", [
    ('\n<Measured fig="mytalk/typo" value="x"/>\n',
     "no figure script declares figure 'mytalk/typo' (did you mean mytalk/cka?)"),
    ("\n![x](/figures/demo/plott.png)\n",
     "asset /figures/demo/plott.png: no figure script declares figure 'demo/plott' (did you mean demo/plot?)"),
    ('\n<Measured fig="demo/plot" value="layers.0.ckaa"/>\n',
     "value 'layers.0.ckaa': no 'ckaa' here (did you mean layers.0.cka"),
    ('\n<Measured fig="demo/plot" value="acuracy"/>\n', "(did you mean accuracy?)"),
])
def test_unknown_figure_ids_and_value_keys_get_did_you_mean(tmp_path, body, message):
    deck = write_deck(tmp_path, GOOD + "\n---\n" + body)
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "demo.py").write_text(DEMO_SCRIPT)
    found = problems_of(deck)
    assert len(found) == 1, found
    assert found[0].line == deck.read_text().split("\n").index(body.strip()) + 1
    assert message in found[0].message


def test_an_id_two_scripts_declare_is_an_error_at_the_copys_line(tmp_path):
    """The runner then makes no figure at all: a check that passed would promise a build that stops."""
    deck = write_deck(tmp_path, GOOD)
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "demo.py").write_text(DEMO_SCRIPT)
    (tmp_path / "figures_src" / "demo_copy.py").write_text("\n" + DEMO_SCRIPT)
    [problem] = problems_of(deck)
    assert (problem.path.name, problem.line, problem.level) == ("demo_copy.py", 2, "error")
    assert problem.message.startswith("figure id 'demo/plot' is also declared at ")
    assert problem.message.endswith("; `make slides` and `make figures` stop until it is fixed")


def test_a_declared_figure_not_made_yet_says_the_make_line_that_makes_this_decks_figures(tmp_path):
    """Not `make figures`, which makes every stale figure of the repository in the full profile."""
    deck = write_deck(tmp_path, GOOD + '\n---\n\n<Measured fig="mytalk/cka" value="x"/>\n\n![p](/figures/mytalk/cka.png)\n')
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "demo.py").write_text(DEMO_SCRIPT)
    image, measured = problems_of(deck)
    assert measured.message.endswith(f"has no numbers file {deck.parent / 'public/figures/mytalk/cka.json'}: "
                                     f"run `make slides DECK={deck}` to make it")
    assert image.message.endswith(f": run `make slides DECK={deck}` to make it")
    problem = problems_of_profile(deck, "quick")[1]
    assert problem.message.endswith(f"run `make slides DECK={deck} PROFILE=quick` to make it")



def test_a_figure_script_that_does_not_parse_is_a_warning_at_its_line_and_ids_go_unchecked(tmp_path):
    """make check alone must not be silent about it (the runner and make slides name it too)."""
    deck = write_deck(tmp_path, GOOD + '\n---\n\n<Measured fig="mytalk/typo" value="x"/>\n')
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "demo.py").write_text(DEMO_SCRIPT + "def broken(:\n")
    [problem] = problems_of(deck, "warning")
    assert (problem.path.name, problem.line) == ("demo.py", 2)
    assert "does not parse" in problem.message and "not checked" in problem.message
    assert not any("no figure script declares" in p.message for p in problems_of(deck))


def test_a_figure_added_after_the_FIGURES_literal_is_a_warning_at_its_line_not_an_unknown_id(tmp_path):
    deck = write_deck(tmp_path, GOOD + '\n---\n\n<Measured fig="mytalk/late" value="x"/>\n')
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "demo.py").write_text(DEMO_SCRIPT + 'FIGURES["mytalk/late"] = {"make": "h"}\n')
    [problem] = problems_of(deck, "warning")
    assert (problem.path, problem.line) == (tmp_path / "figures_src" / "demo.py", 2)
    assert problem.message.startswith("`FIGURES['mytalk/late'] = {'make': 'h'}` changes FIGURES after its dict literal")
    assert not any("no figure script declares" in p.message for p in problems_of(deck))


LAB_SCRIPT = textwrap.dedent('''
    import matplotlib.pyplot as plt

    FIGURES = {"demo/plot": {"make": "make_acc"}, "lab/acc": {"make": "make_acc", "models": ["m1"]}}

    def make_acc(ctx):
        for name in ctx.declared_models:       # a figure reads each model it declares
            ctx.model_meta(name)
        fig, ax = plt.subplots()
        ax.bar([0], [0.5])
        ctx.save(fig)
        return {"accuracy": 0.5}
    ''')


def test_a_stale_figure_is_a_warning_where_the_deck_shows_it_with_why_and_what_to_run(tmp_path):
    """The speaker retrains their model: the slides still show the old number until remade."""
    shown = '![acc](/figures/lab/acc.png) Accuracy <Measured fig="lab/acc" value="accuracy"/>'
    deck = write_deck(tmp_path, GOOD + "\n---\n\n" + shown + "\n")
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "lab.py").write_text(LAB_SCRIPT)
    (tmp_path / "models" / "m1").mkdir(parents=True)
    (tmp_path / "models" / "m1" / "checkpoint.pt").write_bytes(b"weights, first training")
    (tmp_path / "models" / "m1" / "meta.json").write_text('{"config": {"name": "m1"}}')
    made = subprocess.run([sys.executable, "-m", "figures_src.runner", "--ids", "lab/acc", "--scripts-dir",
                           str(tmp_path / "figures_src"), "--figures-dir", str(deck.parent / "public" / "figures"),
                           "--models-dir", str(tmp_path / "models"), "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert problems_of(deck, "warning") == []
    (tmp_path / "models" / "m1" / "checkpoint.pt").write_bytes(b"weights, trained again")
    warnings = problems_of(deck, "warning")
    line = deck.read_text().split("\n").index(shown) + 1
    # one warning a figure, at the first place the deck shows it, naming the others
    assert [(w.path, w.line, w.column) for w in warnings] == [(deck, line, 8)]
    why = "figure 'lab/acc' is stale: checkpoint m1/checkpoint.pt changed (model m1); the slide "
    # an image and a <Measured> number of it (trial S: "its old image" named a number's line too)
    assert warnings[0].message.startswith(why + f"shows its old image and numbers (also at line {line}): run "
                                          "`make slides DECK=")
    assert f"DECK={deck}` (or `make figures ONLY='lab/acc'`) to remake it" in warnings[0].message
    assert problems_of(deck) == []                 # a warning: the deck still builds
    zoo = tmp_path / "models" / "zoo.yaml"      # a model that cannot be built: one warning, not one a place
    zoo.write_text("models:\n  m1: {architecture: MLP, dataset: digits, learning_rate: 3e-3}\n")
    [problem] = problems_of(deck, "warning") + problems_of(deck)
    assert (problem.path, problem.line, problem.column) == (deck, line, 8)
    assert problem.message.startswith("zoo: cannot build 'm1' (")
    assert "learning_rate must be a number" in problem.message and "run `make" not in problem.message
    assert problem.message.endswith("\n  the figure of this deck that reads it (lab/acc) keeps its previous "
                                    "image and numbers until it is fixed")
    zoo.write_text("models:\n  m2:\n    architecture: MLP\n    epochs: 2\n  dataset: digits\n    seed: 0\n")
    [problem] = problems_of(deck, "warning") + problems_of(deck)   # broken as a whole: at its line
    assert (problem.path.resolve(), problem.line, problem.column, problem.level) == (zoo, 6, 9, "warning")
    assert problem.message == ("not valid YAML: mapping values are not allowed in this context; check this line's "
                               "indentation, colons and quotes, and the line above; no model can be read, and the "
                               "figure of this deck that reads it (lab/acc) keeps its previous image and numbers "
                               "until it is fixed")
    # a misspelt model in the script's "models": the runner's message, and no command that cannot help
    zoo.write_text("models:\n  m1: {architecture: MLP, dataset: digits}\n")
    (tmp_path / "figures_src" / "lab.py").write_text(LAB_SCRIPT.replace('"models": ["m1"]', '"models": ["m11"]'))
    [problem] = problems_of(deck, "warning") + problems_of(deck)
    assert (problem.path, problem.line, problem.column) == (deck, line, 8)
    assert problem.message.startswith(f"its FIGURES entry ({tmp_path / 'figures_src' / 'lab.py'}:4) declares model "
                                      "'m11', which ") and "(did you mean m1?)" in problem.message, problem.message
    assert "run `make" not in problem.message


def make_demo_plot_in_quick(tmp_path, deck) -> None:
    """LAB_SCRIPT in the deck's figures_src/, and its demo/plot made by the runner in the quick profile."""
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "lab.py").write_text(LAB_SCRIPT)
    made = subprocess.run([sys.executable, "-m", "figures_src.runner", "--ids", "demo/plot", "--profile", "quick",
                           "--scripts-dir", str(tmp_path / "figures_src"), "--figures-dir",
                           str(deck.parent / "public" / "figures"), "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr


def test_a_figure_made_in_another_profile_is_stale_for_the_profile_make_slides_runs(tmp_path):
    """make check after a quick build: make slides (PROFILE=full by default) remakes the figure, so
    the check warns where it is shown; with the PROFILE it was made in, it is current."""
    shown = '![acc](/figures/demo/plot.png)'
    deck = write_deck(tmp_path, GOOD + "\n---\n\n" + shown + "\n")
    make_demo_plot_in_quick(tmp_path, deck)

    def check(*args):
        return subprocess.run([sys.executable, "-m", "decktools.check", str(deck), "--bib",
                               str(tmp_path / "citations.bib"), *args], cwd=REPO, capture_output=True, text=True)
    quick, full = check("--profile", "quick"), check()
    assert quick.returncode == 0 and "stale" not in quick.stderr, quick.stderr
    assert full.returncode == 0, full.stderr          # a warning: the deck still builds
    line = deck.read_text().split("\n").index(shown) + 1      # the first place is GOOD's, line 8
    assert (f"{deck}:8:11: warning: figure 'demo/plot' is stale: profile changed from quick to full; the "
            f"slide shows its old image and numbers (also at line 8, line {line}): run `make slides DECK={deck}`"
            ) in full.stderr, full.stderr
    gpu = check("--profile", "gpu")
    assert (f"profile changed from quick to gpu; the slide shows its old image and numbers (also at line 8, line {line}): run "
            f"`make slides DECK={deck} PROFILE=gpu` (or `make figures ONLY='demo/plot' PROFILE=gpu`)") in gpu.stderr, \
        gpu.stderr


def test_a_stale_figure_shown_at_many_places_is_one_warning_at_the_first_naming_the_others(tmp_path):
    """A model change used to print a warning at every place (168 for the main deck): now one a
    figure, at its first place in slide order (imported pages after the slides before them)."""
    page = "# Part\n\n" + "\n\n".join(f'Value {i}: <Measured fig="demo/plot" value="accuracy"/>' for i in range(4))
    deck = write_deck(tmp_path, GOOD + "\n---\nsrc: ./pages/part.md\n---\n\n---\n\n![again](/figures/demo/plot.png)\n",
                      extra_files={"pages/part.md": page + "\n"})
    make_demo_plot_in_quick(tmp_path, deck)
    [warning] = check_deck(deck, tmp_path / "citations.bib", profile="full").problems
    last = deck.read_text().split("\n").index("![again](/figures/demo/plot.png)") + 1
    part = deck.parent / "pages" / "part.md"
    assert (warning.path, warning.line, warning.column, warning.level) == (deck, 8, 11, "warning")
    assert (f"the slide shows its old image and numbers (also at line 8, {part}:3, {part}:5, {part}:7 and 2 more places): "
            "run `make slides DECK=") in warning.message, warning.message
    assert f"line {last}" not in warning.message       # the deck's last slide comes after the page: left out


LAYERS = {"probe": {"features.0": {"accuracy": 0.5}, "features.2": {"accuracy": 0.96875}},
          "a": {"b": {"c": 1, "e": 4}}, "a.b": {"c": 2, "d": 3}}


def test_measured_keys_may_hold_dots_and_the_slide_shows_what_the_check_resolved(tmp_path):
    """Layer names ('features.2') are keys with dots; the check and the prepared slide agree."""
    tags = " ".join(f'<Measured fig="demo/layers" value="{value}" digits="{digits}"/>' for value, digits in
                    [("probe.features.2.accuracy", 3), ("a.b.c", 0), ("a.b.d", 0), ("a.b.e", 0)])
    deck = write_deck(tmp_path, GOOD + "\n---\n\n" + tags + "\n")
    (deck.parent / "public" / "figures" / "demo" / "layers.json").write_text(json.dumps(LAYERS))
    assert problems_of(deck) == []
    text = prepare_deck(deck, tmp_path / "citations.bib").read_text()
    assert '<span class="measured" title="demo/layers: probe.features.2.accuracy">0.969</span>' in text
    # keys "a.b" and "a" overlap: the longest key that reaches a value wins, else a shorter one
    assert 'title="demo/layers: a.b.c">2</span>' in text and 'title="demo/layers: a.b.d">3</span>' in text
    assert 'title="demo/layers: a.b.e">4</span>' in text


def test_a_code_fence_left_open_on_its_slide_is_an_error_at_its_line(tmp_path):
    """Slidev fails on it with an error in its generated file, or shows the slide's image as code."""
    closed = ("\n---\n\n```python\nx = 1\n```\n\n> ```\n> quoted\n> ```\n\n"
              "```\nlonger closing\n````\n\n<!--\n```\nnotes may hold anything\n-->\n")
    left_open = "\n---\n\n# Code\n\n  ```python\nx = 1\n\n![p](/figures/demo/plot.png)\n\n---\n\n~~~\ny\n"
    deck = write_deck(tmp_path, GOOD + closed + left_open)
    lines = deck.read_text().split("\n")
    assert [(p.line, p.column, p.message) for p in problems_of(deck)] == [
        (lines.index("  ```python") + 1, 3, "this ``` code fence is not closed on its slide: add a line ``` after the "
         "code (else Slidev fails to build, or shows the rest of the slide, images included, as code)"),
        (lines.index("~~~") + 1, 1, "this ~~~ code fence is not closed on its slide: add a line ~~~ after the "
         "code (else Slidev fails to build, or shows the rest of the slide, images included, as code)")]


def test_a_whole_number_is_shown_whole_unless_digits_are_given_and_a_list_item_by_item(tmp_path):
    from decktools.numbers import format_measured
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "counts.json").write_text(json.dumps({"units": 8, "images": 60000, "share": 0.5,
                                                                "seeds": [0, 1, 2], "scores": [0.51, 0.625]}))
    shown = [format_measured({"fig": "demo/counts", **extra}, tmp_path)
             for extra in ({"value": "units"}, {"value": "images"}, {"value": "units", "digits": "1"},
                           {"value": "units", "unit": " units"}, {"value": "share"}, {"value": "seeds"},
                           {"value": "scores", "digits": "1"})]
    assert shown == ["8", "60,000", "8.0", "8 units", "0.50", "0, 1, 2", "0.5, 0.6"]


@pytest.mark.parametrize("value, message", [
    ("probe.features.3.accuracy", "no 'features', 'features.3' or 'features.3.accuracy' here "
     "(did you mean probe.features.2.accuracy, probe.features.0.accuracy"),
    ("probe.features.2.acc", "no 'acc' here (did you mean probe.features.2.accuracy"),
])
def test_a_dotted_key_that_misses_names_what_is_there_and_never_suggests_itself(tmp_path, value, message):
    deck = write_deck(tmp_path, GOOD + f'\n---\n\n<Measured fig="demo/layers" value="{value}"/>\n')
    (deck.parent / "public" / "figures" / "demo" / "layers.json").write_text(json.dumps(LAYERS))
    [problem] = problems_of(deck)
    assert message in problem.message and "available here: " in problem.message
    assert f"mean {value}," not in problem.message and f"mean {value}?" not in problem.message


def test_a_key_in_another_case_is_suggested_and_keys_are_said_to_be_case_sensitive(tmp_path):
    deck = write_deck(tmp_path, GOOD + "\n---\n\n# [@ALPHA2020] [@Delta2091]\n")
    found = sorted(p.message for p in problems_of(deck))
    assert found == ["unknown citation key 'ALPHA2020' (did you mean alpha2020?); citation keys are "
                     "case-sensitive: write the key as its entry does",
                     "unknown citation key 'Delta2091' (did you mean delta2019?): add an entry to "
                     "citations.bib or fix the key"]


# --- markdown read from markdown-it's tokens (decktools.mdscan) ---

def test_a_reference_style_image_is_checked_at_its_definition(tmp_path):
    deck = write_deck(tmp_path, "\n# Refs [@alpha2020; @delta2019]\n\n![a plot][good] and ![missing][nope]\n\n"
                      "[good]: /figures/demo/plot.png\n[nope]:   /figures/demo/nope.png \"a title\"\n")
    found = problems_of(deck)
    line = deck.read_text().split("\n").index('[nope]:   /figures/demo/nope.png "a title"') + 1
    assert [(p.line, p.column) for p in found] == [(line, 11)]
    assert found[0].message.startswith("asset /figures/demo/nope.png not found")


def test_single_quoted_html_sources_and_images_in_lists_are_located(tmp_path):
    deck = write_deck(tmp_path, "\n# Q [@alpha2020; @delta2019]\n\n<img src='/figures/demo/gone.png'>\n\n"
                      "> - quoted item\n>   ![x](/figures/demo/lost.png)\n")
    lines = deck.read_text().split("\n")
    found = [(p.line, p.column, p.message.split(" not found")[0]) for p in problems_of(deck)]
    assert found == [(lines.index("<img src='/figures/demo/gone.png'>") + 1, 11, "asset /figures/demo/gone.png"),
                     (lines.index(">   ![x](/figures/demo/lost.png)") + 1, 10, "asset /figures/demo/lost.png")]


# --- src: ranges, slide numbering, timing keys (decks split into sub-files) ---

PART = "# P1 [@nobody2000]\n\n---\n\n# P2\n\n---\nhide: true\n---\n\n# P3\n\n---\n\n# P4\n\n---\n\n# P5\n"


def slidev_loaded(deck: Path, frontmatter: bool = False) -> list[tuple]:
    """(file name, title) of each slide @slidev/parser's load() gives the deck, as Slidev builds it;
    with `frontmatter`, (file name, title, the frontmatter Slidev gives the slide)."""
    loader = REPO / "talk" / "node_modules" / "@slidev" / "parser" / "dist" / "fs.mjs"
    if not shutil.which("node") or not loader.exists():
        pytest.fail("needs node and talk/node_modules: run `make test` (it runs npm ci in talk/) or `make node`")
    script = ("const {load} = await import(process.argv[1]); const root = process.argv[2];"
              "const deck = await load({userRoot: root, roots: [root]}, process.argv[3]);"
              "process.stdout.write(JSON.stringify(deck.slides.map(s => [s.source.filepath, s.title, s.frontmatter])))")
    result = subprocess.run(["node", "--input-type=module", "-e", script, loader.as_uri(), str(deck.parent), str(deck)],
                            capture_output=True, text=True, check=True)
    return [(Path(path).name, title, *([keys] if frontmatter else [])) for path, title, keys in json.loads(result.stdout)]


@pytest.mark.parametrize("spec", ["#2", "#2-3", "#1,3", "#2,4-", "#4;1", "#all", "#none", ""])
def test_a_src_range_imports_the_slides_slidev_imports_and_only_theirs_are_checked(tmp_path, spec):
    deck = write_deck(tmp_path, "\n# Start [@alpha2020; @delta2019]\n\n---\nsrc: ./pages/part.md" + spec +
                      "\n---\n\n---\n\n# End\n", extra_files={"pages/part.md": PART})
    ours = [(s.path.name, slide_title(s)) for s in read_deck(deck).visible_slides]
    assert ours == [(name, title.split(" [")[0]) for name, title in slidev_loaded(deck)]
    imports_p1 = spec in ("", "#1,3", "#4;1", "#all")       # P1 alone cites an unknown key
    assert [p.line for p in problems_of(deck)] == ([1] if imports_p1 else [])


@pytest.mark.parametrize("spec, message", [
    ("#7", "src: ./pages/part.md#7: there is no slide 7 in "),
    ("#3-9", "there is no slide 6 in "),
    ("#0", "there is no slide 0 in "),
    ("#6-", "'6-' names no slide of "),            # PART has 5 slides: Slidev would import nothing
    ("#2-1", "'2-1' names no slide of "),
    ("#two", "cannot read 'two' as slides: write e.g. #2, #2-3, #1,3 or #2-")])
def test_a_range_naming_no_slide_is_one_error_at_the_src_line(tmp_path, spec, message):
    deck = write_deck(tmp_path, "\n# Start\n\n---\nlayout: center\nsrc: ./pages/part.md" + spec + "\n---\n",
                      extra_files={"pages/part.md": PART})
    found = problems_of(deck)
    assert len(found) == 1 and (found[0].path, found[0].line) == (deck, 10) and message in found[0].message


def test_imported_files_are_named_as_the_deck_is_relative_to_where_the_command_runs(tmp_path):
    write_deck(tmp_path, "\n# Start\n\n---\nsrc: ./pages/part.md\n---\n",
               extra_files={"pages/part.md": "---\nsrc: ./sub/deeper.md\n---\n", "pages/sub/deeper.md": "# [@nobody2000]\n"})
    result = subprocess.run([sys.executable, "-m", "decktools.check", "talk/slides.md"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.stderr.startswith("talk/pages/sub/deeper.md:1:3: error: unknown citation key 'nobody2000'")


@pytest.mark.parametrize("frontmatter, line, message", [
    ("budget: ninety", 9, "budget: cannot read 'ninety' as a duration: write e.g. 40min, 90s, 1.5h or 1h30m"),
    ("layout: center\nbudget: 90 secs", 9, None), ("budget: 1h30m", 8, None), ("budget: 2 minutes", 8, None)])
def test_a_budget_that_is_no_duration_is_an_error_at_its_line(tmp_path, frontmatter, line, message):
    deck = write_deck(tmp_path, f"\n# Start\n\n---\n{frontmatter}\n---\n\n# Timed\n")
    found = [(p.line, p.message) for p in problems_of(deck)]
    assert found == ([(line, message)] if message else [])


@pytest.mark.parametrize("duration, message", [
    ("40 mins", "duration: Slidev's presenter timer cannot read '40 mins' (a number with its unit right after "
                "it, s, min or h, or h:m:s): write e.g. 40min or 1h30m"),
    ("forty", "duration: Slidev's presenter timer cannot read 'forty'"), ("1h30m", None), ("40mins", None),
    ("45", "duration: 45 has no unit, and Slidev's presenter timer counts a bare number as seconds: write 45min"),
    ("1:30:00", None)])
def test_a_duration_slidevs_timer_cannot_read_is_an_error_at_its_line(tmp_path, duration, message):
    deck = write_deck(tmp_path, "\n# Start\n")
    deck.write_text(deck.read_text().replace("theme: seriph", f"theme: seriph\nduration: {duration}"))
    found = [(p.line, p.message[:len(message)]) for p in problems_of(deck)] if message else problems_of(deck)
    assert found == ([(4, message)] if message else [])
    if message:
        with pytest.raises(SystemExit, match=f"slides.md:4:1: error: {re.escape(message)}"):
            prepare_deck(deck, tmp_path / "citations.bib")             # make slides stops there too


def test_rehearse_deck_meta_and_the_build_number_slides_as_the_prepared_deck(tmp_path):
    """A two-page reference list and a ranged import: the prepared deck Slidev builds, the
    presenter panel's deck-meta and the rehearsal plan count the same slides."""
    deck = write_deck(tmp_path, "\n# Start [@alpha2020; @delta2019]\n\n---\nsrc: ./pages/part.md#2,4\n---\n\n"
                      "---\nlayout: biblio\nbiblio:\n  item_per_page: 1\n---\n\n# References\n\n---\n\n# Questions?\n",
                      extra_files={"pages/part.md": PART})
    prepared = prepare_deck(deck, tmp_path / "citations.bib")
    built = [first_heading(s.body) for s in read_deck(prepared).visible_slides]
    assert built == ["Start " + built[0].split(" ", 1)[1], "P2", "P4", "References", "References", "Questions?"]
    meta = json.loads((deck.parent / "public" / "deck-meta" / "slides.json").read_text())
    assert [(s["number"], s["title"], s["budget"]) for s in meta["slides"]][3:] == [
        (4, "References", 15.0), (5, "References (page 2)", 0.0), (6, "Questions?", 15.0)]
    plans = plan_deck(read_deck(deck), 130, works_cited(deck, read_deck(deck)))
    assert [(p.number, p.title) for p in plans] == [(s["number"], s["title"]) for s in meta["slides"]]


RANGED_REFERENCES = {"pages/end.md": "# Thanks\n\n---\nlayout: biblio\nbiblio:\n  item_per_page: 1\n"
                                     "---\n\n# References\n\n---\n\n# Questions?\n\n---\n\n# Backup\n"}


@pytest.mark.parametrize("spec, titles", [("#2-3", ["References", "References", "Questions?"]),
                                          ("#4,2", ["References", "References", "Backup"]),
                                          ("#1-", ["Thanks", "References", "References", "Questions?", "Backup"])])
def test_a_ranged_import_of_a_file_whose_reference_list_grows_keeps_naming_the_same_slides(tmp_path, spec, titles):
    """The imported file's two-page reference list is two slides in its prepared copy: the src:
    range there is renumbered, so Slidev (its own load, on the prepared deck) imports the slides
    the speaker's range named, every page of the list, and nothing else."""
    deck = write_deck(tmp_path, f"\n# Start [@alpha2020; @delta2019]\n\n---\nsrc: ./pages/end.md{spec}\n---\n", extra_files=RANGED_REFERENCES)
    prepared = prepare_deck(deck, tmp_path / "citations.bib")
    assert [title.split(" ")[0] for _, title in slidev_loaded(prepared)[1:]] == titles


OVERRIDDEN = {"pages/part.md": "# A\n\n---\nlayout: default\nbudget: 5\n---\n\n# B\n\n---\nhide: true\n---\n\n# C\n",
              "pages/refs.md": "# References\n\n<!--\nthanks\n-->\n"}


def test_a_src_slides_keys_override_every_imported_slide_as_slidev_merges_them(tmp_path):
    """`src:` with other keys: Slidev merges them onto each slide it imports (the src: slide's
    win; a slide hidden by its own frontmatter stays hidden, a hidden src: hides them all)."""
    deck = write_deck(tmp_path, "\n# Start [@alpha2020; @delta2019]\n\n---\nsrc: ./pages/part.md\nlayout: center\n"
                      "budget: 1min\n---\n\n---\nsrc: ./pages/part.md#1\nhide: true\n---\n\n---\n"
                      "src: ./pages/refs.md\nlayout: biblio\n---\n", extra_files=OVERRIDDEN)
    ours = [(s.path.name, slide_title(s), s.frontmatter) for s in read_deck(deck).visible_slides]
    assert ours == [(name, title.split(" [")[0], keys) for name, title, keys in slidev_loaded(deck, frontmatter=True)]
    assert [keys.get("layout") for _, _, keys in ours] == [None, "center", "center", "biblio"]
    plans = plan_deck(read_deck(deck), 130, works_cited(deck, read_deck(deck)))
    assert [(p.title, p.seconds) for p in plans] == [("Test", 15), ("A", 60), ("B", 60), ("References", 15)]
    prepare_deck(deck, tmp_path / "citations.bib")
    assert 'data-key="delta2019"' in (deck.parent / "pages" / "refs.prepared.md").read_text()
    deck.write_text(deck.read_text().replace("budget: 1min", "budget: ninety"))
    assert [(p.path, p.line) for p in problems_of(deck)] == [(deck, 11)]     # once, where it is written


HIDDEN = "\n# Shown [@alpha2020]\n\n---\nhide: true\n---\n\n# Hidden [@delta2019] <Measured fig=\"mytalk/cka\" value=\"x\"/>\n" \
         "\n---\ndisabled: yes\n---\n\n![x](/figures/mytalk/cka.png)\n\n---\nhide: no\n---\n\n# Hidden too\n" \
         "\n---\nlayout: biblio\n---\n\n# References\n"


def test_a_hidden_slide_is_checked_for_typos_but_lists_no_reference_and_needs_no_figure(tmp_path):
    """Slidev never loads a hide:/disabled: slide (nor prints or exports it): what only it cites
    is not in the reference list and what only it shows need not be made, yet its keys and figure
    ids are still checked, so a typo is caught before the slide is shown again."""
    deck = write_deck(tmp_path, HIDDEN)
    (tmp_path / "figures_src").mkdir()
    (tmp_path / "figures_src" / "demo.py").write_text(DEMO_SCRIPT)
    assert problems_of(deck) == []
    unused, no = problems_of(deck, "warning")
    assert "'delta2019' is cited by no deck" in unused.message and "only on hidden slides of" in unused.message
    assert (no.line, no.message) == (21, "hide: no is text to Slidev, which reads it as true and hides the slide: "
                                         "write hide: false to show it, or hide: true")
    assert [s.path.name for s in read_deck(deck).visible_slides] == [name for name, _ in slidev_loaded(deck)]
    prepared = prepare_deck(deck, tmp_path / "citations.bib").read_text()
    assert 'data-key="alpha2020"' in prepared and 'data-key="delta2019"' not in prepared
    assert "# Hidden [@delta2019] <Measured" in prepared          # left as written: Slidev drops it
    deck.write_text(deck.read_text().replace("@delta2019", "@delta2091").replace("mytalk/cka", "mytalk/ckaa"))
    assert sorted(p.message.split(" (")[0] for p in problems_of(deck)) == [
        "asset /figures/mytalk/ckaa.png: no figure script declares figure 'mytalk/ckaa'",
        "no figure script declares figure 'mytalk/ckaa'", "unknown citation key 'delta2091'"]


def with_installed_packages(deck: Path) -> Path:
    """The deck's folder gets the project's real talk/node_modules, as a speaker's talk/ has."""
    link_node_modules(deck.parent)
    return deck


@pytest.mark.parametrize("head, line, message", [
    ("theme: apple-basic", 3, "theme 'apple-basic' is not installed (talk/node_modules has no "
     "@slidev/theme-apple-basic or slidev-theme-apple-basic): use one of default, seriph, or add it to "
     "talk/package.json and run make node"),
    ("theme: ./my-theme", 3, "theme folder './my-theme' not found"),
    ("theme: Apple Basic", 3, "theme 'Apple Basic' is not a valid npm package name"),
    ("theme: slidev-theme-apple", 3, "theme 'slidev-theme-apple' is not installed (talk/node_modules has no "
     "slidev-theme-apple): use one of"),          # a full package name is tried as written
    ("addons:\n  - slidev-addon-citations\n  - qrcode", 5, "addon 'qrcode' is not installed (talk/node_modules "
     "has no @slidev/addon-qrcode or slidev-addon-qrcode): add it to talk/package.json and run make node"),
])
def test_a_theme_or_addon_that_is_not_installed_is_an_error_at_its_line(tmp_path, monkeypatch, head, line, message):
    deck = with_installed_packages(write_deck(tmp_path, GOOD))
    deck.write_text(deck.read_text().replace("theme: seriph", head))
    monkeypatch.chdir(tmp_path)                       # the paths as `make check DECK=talk/x.md` shows them
    found = [str(p) for p in problems_of(Path("talk/slides.md"))]
    assert len(found) == 1 and found[0].startswith(f"talk/slides.md:{line}:1: error: {message}"), found
    with pytest.raises(SystemExit, match="fails the check"):   # the build's preflight: prepare refuses it
        prepare_deck(Path("talk/slides.md"), Path("citations.bib"))


@pytest.mark.parametrize("head", ["theme: seriph", "theme: default", "theme: none", "theme: '@slidev/theme-seriph'",
                                  "theme: ./my-theme", "theme: '@/my-theme'", "title: no theme line"])
def test_installed_themes_none_and_theme_folders_pass(tmp_path, head):
    deck = with_installed_packages(write_deck(tmp_path, GOOD, extra_files={"my-theme/package.json": "{}"}))
    deck.write_text(deck.read_text().replace("theme: seriph", head))
    assert problems_of(deck) == []


def test_a_stale_warning_says_what_its_places_show_of_the_figure():
    from decktools.check import old_outputs_shown
    from decktools.references import Reference
    image, number = (Reference(Path("talk/x.md"), line, 1, "", kind) for line, kind in ((3, "image"), (9, "measured")))
    assert old_outputs_shown([image]) == "shows its old image"
    assert old_outputs_shown([number]) == "quotes its old number"
    assert old_outputs_shown([number, number]) == "quotes its old numbers"
    assert old_outputs_shown([image, number]) == "shows its old image and numbers"
