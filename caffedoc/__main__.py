"""`caffedoc` and `python -m caffedoc`."""

import os
import sys


def main() -> None:
    # Before anything reads the environment: the command line sets it too (plain click
    # output), and a check's head start must see the environment its command will.
    os.environ.setdefault("TYPER_USE_RICH", "0")
    from caffedoc import head_start

    head_start.begin(sys.argv[1:])
    from caffedoc.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
