"""A deck's own bib files (biblio.filename) and citations formatted by pandoc's citeproc (APA).

Real files in a temporary talk-like folder, the real pandoc of pypandoc-binary. The expected APA
strings follow the style's rules (two authors "&", three or more "et al.", a corporate author
printed whole), written out by hand as the independent reference.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

from decktools.bib import deck_bib_files, load_bibliographies
from decktools.check import check_deck
from decktools.citations import render_citations
from decktools.markdown import read_deck
from decktools.prepare import prepare_deck
from decktools.problems import errors

REPO = Path(__file__).resolve().parent.parent

MAIN_BIB = textwrap.dedent("""\
    @article{alpha2020,
      author = {Alpha, Ann and Beta, Bob and Gamma, Gil},
      title = {A Study},
      journal = {Distill},
      year = {2020}
    }
    """)

MINE_BIB = textwrap.dedent("""\
    % the speaker's own entries
    @techreport{ntsb2020,
      author = {{National Transportation Safety Board}},
      title = {A Report},
      institution = {National Transportation Safety Board},
      year = {2020}
    }

    @inproceedings{m{\\"u}ller2019,
      author = {M{\\"u}ller, J{\\"o}rg and Smith, Pat},
      title = {Another Study},
      booktitle = {ICML},
      year = {2019}
    }
    """).replace('m{\\"u}ller2019', "muller2019")


def talk_folder(tmp_path: Path, headmatter: str, body: str, files: dict[str, str]) -> Path:
    """tmp/citations.bib (the repository's), tmp/talk/slides.md, and the other files named."""
    (tmp_path / "citations.bib").write_text(MAIN_BIB)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    deck = tmp_path / "talk" / "slides.md"
    deck.parent.mkdir(exist_ok=True)
    deck.write_text(f"---\ntitle: T\n{headmatter}---\n\n{body}\n")
    return deck


def test_default_is_the_repository_citations_bib(tmp_path):
    deck = talk_folder(tmp_path, "", "# [@alpha2020]", {})
    assert deck_bib_files(deck, read_deck(deck).headmatter) == ([tmp_path / "citations.bib"], [])


def test_names_resolve_beside_the_deck_then_public_biblio(tmp_path):
    head = "biblio:\n  filename: [citations.bib, mine.bib]\n"
    deck = talk_folder(tmp_path, head, "# [@alpha2020] [@ntsb2020]", {"talk/public/biblio/mine.bib": MINE_BIB})
    files, problems = deck_bib_files(deck, read_deck(deck).headmatter)
    assert files == [tmp_path / "citations.bib", tmp_path / "talk/public/biblio/mine.bib"] and problems == []
    (tmp_path / "talk" / "mine.bib").write_text(MINE_BIB)       # beside the deck comes first
    assert deck_bib_files(deck, read_deck(deck).headmatter)[0][1] == tmp_path / "talk" / "mine.bib"
    assert errors(check_deck(deck).problems) == []


def test_a_single_name_and_a_missing_file(tmp_path):
    deck = talk_folder(tmp_path, "biblio:\n  filename: nowhere.bib\n", "# [@alpha2020]", {})
    files, problems = deck_bib_files(deck, read_deck(deck).headmatter)
    assert files == [] and len(problems) == 1
    assert problems[0].path == deck and problems[0].line == 4 and "nowhere.bib not found" in problems[0].message
    assert "talk/public/biblio/nowhere.bib" in problems[0].message
    assert check_deck(deck).problems == problems     # no "unknown key: add an entry to citations.bib"


def test_files_merge_and_a_key_in_two_files_names_both_places(tmp_path):
    (tmp_path / "a.bib").write_text(MAIN_BIB)
    (tmp_path / "b.bib").write_text(MINE_BIB + "\n" + MAIN_BIB)
    merged, problems = load_bibliographies([tmp_path / "a.bib", tmp_path / "b.bib"])
    assert set(merged.entries) == {"alpha2020", "ntsb2020", "muller2019"}
    assert merged.sources["ntsb2020"] == tmp_path / "b.bib" and merged.lines["ntsb2020"] == 2
    [duplicate] = problems
    second_line = MINE_BIB.count("\n") + 2
    assert (duplicate.path, duplicate.line) == (tmp_path / "b.bib", second_line)
    assert f"{tmp_path / 'a.bib'}:1" in duplicate.message and f"{tmp_path / 'b.bib'}:{second_line}" in duplicate.message


def test_check_command_honours_the_headmatter_and_bib_overrides(tmp_path):
    head = "biblio:\n  filename:\n    - citations.bib\n    - mine.bib\n"
    deck = talk_folder(tmp_path, head, "# [@alpha2020] [@ntsb2020] [@muller2019]", {"talk/mine.bib": MINE_BIB})
    run = lambda *extra: subprocess.run([sys.executable, "-m", "decktools.check", str(deck), *extra],
                                        cwd=REPO, capture_output=True, text=True)
    assert run().returncode == 0
    overridden = run("--bib", str(tmp_path / "citations.bib"))
    assert overridden.returncode == 1 and "unknown citation key 'ntsb2020'" in overridden.stderr


def test_unused_entries_count_every_deck_that_uses_the_file(tmp_path):
    head = "biblio:\n  filename: [citations.bib, mine.bib]\n"
    deck = talk_folder(tmp_path, head, "# [@alpha2020] [@ntsb2020]", {"talk/mine.bib": MINE_BIB})
    warned = lambda: [(p.path.name, p.message.split("'")[1]) for p in check_deck(deck).problems if p.level == "warning"]
    assert warned() == [("mine.bib", "muller2019")]
    other = deck.parent / "other.md"
    other.write_text("---\ntitle: O\n---\n\n# [@muller2019]\n")      # cites it, but from citations.bib only
    assert warned() == [("mine.bib", "muller2019")]
    other.write_text("---\ntitle: O\nbiblio:\n  filename: mine.bib\n---\n\n# [@muller2019]\n")
    assert warned() == []


def test_apa_in_text_forms_and_entries(tmp_path):
    (tmp_path / "mine.bib").write_text(MINE_BIB)
    (tmp_path / "main.bib").write_text(MAIN_BIB)
    rendered = render_citations([("alpha2020",), ("ntsb2020", "muller2019"), ("alpha2020",)],
                                [tmp_path / "main.bib", tmp_path / "mine.bib"])
    assert rendered.in_text == {("alpha2020",): "(Alpha et al., 2020)",
                                ("ntsb2020", "muller2019"): "(Müller &amp; Smith, 2019; National Transportation Safety Board, 2020)"}
    assert [key for key, _ in rendered.entries] == ["alpha2020", "muller2019", "ntsb2020"]  # cited only, APA order
    assert rendered.entries[2][1].startswith("National Transportation Safety Board. (2020). <em>A report</em>")
    assert rendered.entries[1][1].startswith("Müller, J., &amp; Smith, P. (2019). Another study.")


def test_a_long_bibliography_becomes_as_many_slides_as_it_needs(tmp_path):
    entries = "".join(f"@misc{{w{i},\n  author = {{Writer{i}, Wen}},\n  title = {{Work {i}}},\n  year = {{2001}}\n}}\n\n"
                      for i in range(5))
    body = " ".join(f"[@w{i}]" for i in range(5)) + ("\n\n---\nlayout: biblio\nbiblio:\n  item_per_page: 2\n---\n\n"
                                                     "# References\n\n<!--\nSay thanks.\n-->")
    deck = talk_folder(tmp_path, "", body, {"citations.bib": entries})
    prepared = read_deck(prepare_deck(deck))
    pages = [s for s in prepared.slides if s.frontmatter.get("layout") == "biblio"]
    assert len(prepared.slides) == 4 and len(pages) == 3
    texts = ["\n".join(text for _, text in page.body) for page in pages]
    assert all("# References" in text and f"{n} / 3" in text for n, text in enumerate(texts, start=1))
    assert ["Say thanks" in text for text in texts] == [True, False, False]   # notes once
    listed = [line.split('data-key="')[1].split('"')[0] for text in texts for line in text.split("\n") if "data-key=" in line]
    assert listed == ["w0", "w1", "w2", "w3", "w4"]
    assert [p.frontmatter.get("budget") for p in pages] == [None, 0, 0]


def test_particles_corporate_names_and_suffixes_come_out_right(tmp_path):
    """Names are citeproc's, never split by hand. BibTeX's "von" part is kept in front of the
    family name as APA 7 writes it ("von Luxburg, U.", sorted under V), with or without biblatex's
    useprefix; a braced corporate name is one name, "and" inside it included; "Jr." is a suffix."""
    (tmp_path / "names.bib").write_text(textwrap.dedent("""\
        @article{vonluxburg2007, author = {von Luxburg, Ulrike}, title = {Spectral}, journal = {SC}, year = {2007}}
        @article{vandermaaten2008, author = {van der Maaten, Laurens and Hinton, Geoffrey}, title = {t-{SNE}},
                 journal = {JMLR}, year = {2008}}
        @book{neumann1944, author = {von Neumann, John and Morgenstern, Oskar}, title = {Games},
              publisher = {PUP}, year = {1944}, options = {useprefix=true}}
        @misc{who2021, author = {{World Health Organization} and {Smith and Sons}}, title = {Report},
              year = {2021}}
        @article{king1963, author = {King, Jr., Martin Luther}, title = {Letter}, journal = {J}, year = {1963}}
        @article{lang2000, author = {Lang, Anna and Mann, Max}, title = {Plain}, journal = {J}, year = {2000}}
        """))
    cited = [("vonluxburg2007",), ("vandermaaten2008",), ("neumann1944",), ("who2021",), ("king1963",), ("lang2000",)]
    rendered = render_citations(cited, [tmp_path / "names.bib"])
    assert rendered.in_text == {("vonluxburg2007",): "(von Luxburg, 2007)",
                                ("vandermaaten2008",): "(van der Maaten &amp; Hinton, 2008)",
                                ("neumann1944",): "(von Neumann &amp; Morgenstern, 1944)",
                                ("who2021",): "(World Health Organization &amp; Smith and Sons, 2021)",
                                ("king1963",): "(King, 1963)",
                                ("lang2000",): "(Lang &amp; Mann, 2000)"}
    entries = dict(rendered.entries)
    assert [key for key, _ in rendered.entries] == ["king1963", "lang2000", "vandermaaten2008", "vonluxburg2007",
                                                    "neumann1944", "who2021"]   # particles sort under V
    assert entries["vonluxburg2007"].startswith("von Luxburg, U. (2007). Spectral.")
    assert entries["vandermaaten2008"].startswith("van der Maaten, L., &amp; Hinton, G. (2008). T-SNE.")
    assert entries["neumann1944"].startswith("von Neumann, J., &amp; Morgenstern, O. (1944).")
    assert entries["who2021"].startswith("World Health Organization, &amp; Smith and Sons. (2021).")
    assert entries["king1963"].startswith("King, M. L., Jr. (1963).")
    assert entries["lang2000"].startswith("Lang, A., &amp; Mann, M. (2000). Plain.")


# as Zotero's Better BibLaTeX exports them: biblatex's date, no year; a web page with no author
EXPORTED_BIB = textwrap.dedent("""\
    @inproceedings{sundararajan2017axiomatic,
      title = {Axiomatic {{Attribution}} for {{Deep Networks}}},
      booktitle = {Proceedings of the 34th {{International Conference}} on {{Machine Learning}}},
      author = {Sundararajan, Mukund and Taly, Ankur and Yan, Qiqi},
      date = {2017-07-17},
      series = {Proceedings of {{Machine Learning Research}}},
      volume = {70},
      pages = {3319--3328},
      publisher = {{PMLR}},
      url = {https://proceedings.mlr.press/v70/sundararajan17a.html},
      urldate = {2024-03-02},
      langid = {english}
    }

    @online{distill2018guide,
      title = {Distill {{Guide}} for {{Authors}}},
      date = {2018-03-01},
      url = {https://distill.pub/guide/},
      urldate = {2024-05-10}
    }

    @book{smith2020handbook,
      editor = {Smith, Jane and Doe, John},
      title = {Handbook of Interpretability},
      date = {2020},
      publisher = {Pub}
    }
    """)


def test_a_better_biblatex_export_is_accepted_and_reads_as_apa(tmp_path):
    """date stands for year, an editor for an author, and a web page needs none: APA (and pandoc)
    put its title in the author's place."""
    cited = [("sundararajan2017axiomatic",), ("distill2018guide",), ("smith2020handbook",)]
    deck = talk_folder(tmp_path, "biblio:\n  filename: mine.bib\n", " ".join(f"[@{k}]" for (k,) in cited),
                       {"talk/mine.bib": EXPORTED_BIB})
    assert check_deck(deck).problems == []
    rendered = render_citations(cited, [deck.parent / "mine.bib"])
    assert rendered.in_text == {("sundararajan2017axiomatic",): "(Sundararajan et al., 2017)",
                                ("distill2018guide",): "(<em>Distill Guide for Authors</em>, 2018)",
                                ("smith2020handbook",): "(Smith &amp; Doe, 2020)"}
    entries = dict(rendered.entries)
    assert entries["sundararajan2017axiomatic"].startswith(   # a paper in proceedings: the year alone
        "Sundararajan, M., Taly, A., &amp; Yan, Q. (2017). Axiomatic Attribution for Deep Networks. "
        "<em>Proceedings of the 34th International Conference on Machine Learning, Proceedings of Machine "
        "Learning Research</em>, <em>70</em>, 3319–3328. <a href=")
    assert entries["distill2018guide"].startswith("<em>Distill Guide for Authors</em>. (2018, March 1). <a href=")
    assert entries["smith2020handbook"] == "Smith, J., &amp; Doe, J. (Eds.). (2020). <em>Handbook of interpretability</em>. Pub."


# --- crossref and @string, as JabRef writes them: the parent's fields count, as pandoc reads them ---

CROSSREF_BIB = textwrap.dedent("""\
    @String{neurips = {Advances in Neural Information Processing Systems}}

    @Proceedings{neurips2017,
      title        = neurips # { 30},
      year         = {2017},
      editor       = {Guyon, Isabelle and von Luxburg, Ulrike},
      publisher    = {Curran Associates},
    }

    @InProceedings{lundberg2017unified,
      author       = {Lundberg, Scott M. and Lee, Su-In},
      title        = {A Unified Approach to Interpreting Model Predictions},
      pages        = {4765--4774},
      month        = dec,
      crossref     = {neurips2017},
    }
    """)


def test_a_crossref_entry_takes_year_and_editors_from_its_parent_which_counts_as_cited(tmp_path):
    deck = talk_folder(tmp_path, "biblio:\n  filename: lecture.bib\n", "# [@lundberg2017unified]",
                       {"talk/lecture.bib": CROSSREF_BIB})
    assert check_deck(deck).problems == []       # no "missing year", no "neurips2017 is cited by no deck"
    [(key, entry)] = render_citations([("lundberg2017unified",)], [deck.parent / "lecture.bib"]).entries
    assert entry.startswith("Lundberg, S. M., &amp; Lee, S.-I. (2017). A unified approach to interpreting model "
                            "predictions. In I. Guyon &amp; U. von Luxburg (Eds.), <em>Advances in neural "
                            "information processing systems 30</em> (pp. 4765–4774). Curran Associates.")


def test_an_inproceedings_does_not_take_its_proceedings_title_and_a_missing_parent_is_one_error(tmp_path):
    untitled = CROSSREF_BIB.replace("  title        = {A Unified Approach to Interpreting Model Predictions},\n", "")
    deck = talk_folder(tmp_path, "biblio:\n  filename: lecture.bib\n", "# [@lundberg2017unified]",
                       {"talk/lecture.bib": untitled})
    [missing] = check_deck(deck).problems       # biblatex makes the parent's title the booktitle
    assert (missing.line, missing.message) == (10, "entry 'lundberg2017unified' is missing title: add `title = {...}`")
    (deck.parent / "lecture.bib").write_text(CROSSREF_BIB.replace("crossref     = {neurips2017}", "crossref = {nips2017}"))
    [broken] = errors(check_deck(deck).problems)
    assert (broken.path.name, broken.line, broken.level) == ("lecture.bib", 10, "error")
    assert broken.message == ("entry 'lundberg2017unified': crossref {nips2017} is no entry of lecture.bib (did you "
                              "mean neurips2017?): fix the key, or add the parent entry to this file (pandoc reads "
                              "each bib file alone)")


def test_a_crossref_parent_in_another_of_the_decks_bib_files_is_named_there(tmp_path):
    parent_start = CROSSREF_BIB.index("@Proceedings")
    child_start = CROSSREF_BIB.index("@InProceedings")
    deck = talk_folder(tmp_path, "biblio:\n  filename: [lecture.bib, proceedings.bib]\n", "# [@lundberg2017unified]",
                       {"talk/lecture.bib": CROSSREF_BIB[child_start:].replace("crossref     = {neurips2017}",
                                                                               "crossref = {neurips2017}"),
                        "talk/proceedings.bib": CROSSREF_BIB[:child_start]})
    [moved] = errors(check_deck(deck).problems)
    assert (moved.path.name, moved.line) == ("lecture.bib", 1)
    assert moved.message.startswith("entry 'lundberg2017unified': its crossref parent 'neurips2017' is in "
                                    "proceedings.bib, not lecture.bib: move it into lecture.bib")
    assert parent_start < child_start


def test_an_undefined_string_macro_is_an_error_at_its_field_with_did_you_mean(tmp_path):
    bib = "@String{distill = {Distill}}\n\n" + MAIN_BIB.replace("journal = {Distill}", "journal = distil # { Pub}")
    deck = talk_folder(tmp_path, "", "# [@alpha2020]", {"citations.bib": bib})
    [problem] = check_deck(deck).problems
    assert (problem.path, problem.line, problem.level) == (tmp_path / "citations.bib", 6, "error")
    assert problem.message.startswith("entry 'alpha2020': field 'journal' uses the @string 'distil', which "
                                      "citations.bib does not define (did you mean distill?)")
    (tmp_path / "citations.bib").write_text(bib.replace("distil #", "DISTILL #"))   # macros ignore case
    assert check_deck(deck).problems == []
    (tmp_path / "citations.bib").write_text(bib.replace("distil #", "distill #").replace("year = {2020}",
                                                                                       "year = {2020},\n  month = mai"))
    [month] = check_deck(deck).problems
    assert "uses the @string 'mai'" in month.message and "(did you mean may" in month.message


def test_locators_prefixes_and_narrative_citations_read_as_pandoc_writes_them(tmp_path):
    body = ("# [@alpha2020, p. 3] and @alpha2020 wrote [see -@alpha2020, p. 2], then @alpha2020 [p. 4];\n\n"
            "mail me@uni.edu, `@alpha2020`, \\@alpha2020.\n\n<!--\nSay @alpha2020 [p. 5].\n-->")
    deck = talk_folder(tmp_path, "", body, {})
    prepared = prepare_deck(deck).read_text()
    span = '<span class="citation" data-keys="alpha2020" v-pre>{}</span>'
    assert (f"# {span.format('(Alpha et al., 2020, p. 3)')} and {span.format('Alpha et al. (2020)')} wrote "
            f"{span.format('(see 2020, p. 2)')}, then {span.format('Alpha et al. (2020, p. 4)')};") in prepared
    assert "mail me@uni.edu, `@alpha2020`, \\@alpha2020." in prepared and "Say Alpha et al. (2020, p. 5)." in prepared
