"""The command line (cli.py) and its subcommands, one module each."""
