"""decktools: check, prepare and rehearse the Slidev decks in talk/.

  markdown   read a deck as slides with line numbers, following `src:` imports
  bib        read citations.bib with bibtexparser and report its problems
  references find citations, assets and measured numbers in a deck (code ignored)
  check      every problem of a deck: file:line:column, what is wrong and what to do
  figures    the figures a deck shows; `make slides` makes only those (through the runner)
  prepare    write the deck Slidev builds: citations rewritten, numbers filled in, bib served
  rehearse   speaking-time plan per slide, against the deck's duration and saved rehearsals

decktools reads figure outputs (talk/public/figures) but never the engine.
"""
