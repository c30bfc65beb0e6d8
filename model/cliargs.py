"""What every command line of the project shares: a parser whose errors are one line, and exit code 2.

A newcomer who mistypes a flag should read what was wrong and where the right ones are listed, not a usage
block. Every CLI (model, pipelines, the dev tools, infra.render) builds its parser from this class.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

USAGE_ERROR = 2  # argparse's own exit code for a bad command line; ours for every other bad request too


class OneLineParser(argparse.ArgumentParser):
    """argparse, with an error as one line that names the fix (`--help`) instead of the usage block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def fail(line: str) -> NoReturn:
    """Print one line to stderr and exit 2: the answer to bad input."""
    print(line, file=sys.stderr)
    sys.exit(USAGE_ERROR)
