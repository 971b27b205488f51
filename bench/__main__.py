"""`python -m bench <command>`: the project's benchmark tool."""

from __future__ import annotations

import argparse

from bench import dedup_memory, load, rebuild, season_close


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild.add_parser(commands)
    load.add_parser(commands)
    dedup_memory.add_parser(commands)
    season_close.add_parser(commands)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
