"""`python -m loadtest.bench --out reports/bench`: the service and the baselines under the same load.

Every server starts as a fresh process on 127.0.0.1 and gets the same closed-loop load (32 keep-alive
connections, one request in flight each), first a warm-up, then the measured window. Figures are
printed, not asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from loadtest.bench.harness import BenchSettings, run_bench
from loadtest.bench.peer_cases import PEERS, case_keys
from loadtest.bench.report import write_reports
from loadtest.bench.wrk import wrk_binary

CASE_KEYS = (
    "modelship-house", "modelship-house-live", "modelship-shadow", "modelship-iris", "modelship-batch",
    "modelship-batch-live", "seed-style", "naive-fastapi",
    "plain-fastapi", "raw-asgi", "iris-flask", "cold-start",
)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="where models are trained")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before the window")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn workers")
    parser.add_argument("--cold-starts", type=int, default=3, help="service starts timed to /ready")
    parser.add_argument(
        "--service-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the modelship service, e.g. MODELSHIP_ACCESS_LOG=false (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--no-bytecode-cache", action="store_true",
        help="start servers as this shell would (PYTHONDONTWRITEBYTECODE as set): the slow-start worst case",
    )  # fmt: skip
    parser.add_argument("--peers", default="", help="comma-separated peers served beside modelship: kserve, mlserver")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each figure is the median")
    parser.add_argument(
        "--loadgen", choices=("wrk", "python"), default=None,
        help="what drives the load: wrk (the default when installed) or our Python generator",
    )  # fmt: skip
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(CASE_KEYS)} "
                        f"(with --peers also: {', '.join(case_keys())})")  # fmt: skip
    return parser


def choose_loadgen(requested: str | None, wrk_installed: bool) -> str | None:
    """The requested generator, or wrk when it is installed; None when wrk is asked for and missing."""
    if requested == "wrk" and not wrk_installed:
        return None
    if requested is None and not wrk_installed:
        logging.getLogger(__name__).warning(
            "wrk is not installed (`make wrk`): falling back to the Python load generator, which shares the cores "
            "with the servers and lowers every figure, the fastest server's most"
        )
        return "python"
    return requested or "wrk"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = frozenset(k.strip() for k in args.only.split(",") if k.strip())
    peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
    if unknown_peers := set(peers) - set(PEERS):
        print(f"unknown --peers: {sorted(unknown_peers)}; use {', '.join(PEERS)}", file=sys.stderr)
        return 2
    if unknown := only - set(CASE_KEYS) - set(case_keys(peers) if peers else ()):
        print(f"unknown --only keys: {sorted(unknown)}", file=sys.stderr)
        return 2
    pairs = [item.partition("=") for item in args.service_env]
    if any(not key or not sep for key, sep, _ in pairs):
        print("--service-env takes KEY=VALUE", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    loadgen = choose_loadgen(args.loadgen, wrk_binary() is not None)
    if loadgen is None:
        print("--loadgen wrk: wrk is not installed; run `make wrk` (Debian package wrk)", file=sys.stderr)
        return 2
    settings = BenchSettings(
        out_dir=args.out, artifacts_dir=args.artifacts, duration_s=args.duration, warmup_s=args.warmup,
        connections=args.connections, workers=args.workers, cold_starts=args.cold_starts, only=only,
        service_env=tuple((key, value) for key, _, value in pairs), bytecode_cache=not args.no_bytecode_cache,
        peers=peers, rounds=max(1, args.rounds), loadgen=loadgen,
    )  # fmt: skip
    run = run_bench(settings)
    text, json_path, png_path = write_reports(run, args.out)
    print(text)
    print(f"\nwritten: {json_path}, {json_path.with_suffix('.txt')}, {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
