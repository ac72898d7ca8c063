"""`python -m figures_src.runner` (and `make figures`): the runner's command line, cli.main."""
import sys

from figures_src.runner.cli import main

sys.exit(main())
