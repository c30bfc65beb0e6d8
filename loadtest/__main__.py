"""`python -m loadtest --url URL --profile local --out reports/loadtest`: the Locust SLO gate.

Exit code 0 when every check of the profile passes, 1 when one fails, 2 when no verdict was reached.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from loadtest.run import LoadcheckError, run_loadcheck
from loadtest.slo import ProfileError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    parser.add_argument("--url", required=True, help="base URL of the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--profile", default="local", help="SLO profile in loadtest/profiles.toml")
    parser.add_argument("--out", type=Path, default=Path("reports/loadtest"), help="output folder")
    parser.add_argument("--duration-override", type=float, default=None, metavar="S", help="run time (s)")
    parser.add_argument("--profiles-file", type=Path, default=None, help="another profiles file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run_loadcheck(
            args.url, args.profile, args.out, args.duration_override, profiles_file=args.profiles_file
        )
    except (ProfileError, LoadcheckError) as exc:
        print(f"load check did not run to a verdict: {exc}", file=sys.stderr)
        return 2
    print(result.verdict_text)
    print(f"summary  {result.summary_path}\nreport   {result.html_path}\nplot     {result.plot_path}")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
