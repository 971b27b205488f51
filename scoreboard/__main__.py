"""`python -m scoreboard …`: the same command line as the `scoreboard` console command."""

import sys

from scoreboard.commands.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m scoreboard"))
