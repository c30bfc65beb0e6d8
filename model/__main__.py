"""CLI: python -m model train|evaluate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from model.artifact import ArtifactError
from model.evaluate import evaluate
from model.keyvalue import parse_pairs
from model.recipes import RECIPES
from model.train import train


def _overrides(pairs: list[str]) -> dict[str, Any]:
    try:
        return parse_pairs(pairs, "--set")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train a recipe into a versioned artifact folder")
    train_parser.add_argument("--recipe", default="house-price", choices=sorted(RECIPES))
    train_parser.add_argument("--out", type=Path, default=Path("artifacts"))
    train_parser.add_argument("--seed", type=int, default=42)
    train_parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    evaluate_parser = commands.add_parser("evaluate", help="print an artifact's held-out metrics as JSON")
    evaluate_parser.add_argument("artifact", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "train":
            result = train(args.recipe, args.out, seed=args.seed, overrides=_overrides(args.overrides))
            summary = {
                "path": str(result.path),
                "version": result.version,
                "reused": result.reused,
                "metrics": result.manifest.metrics,
            }
            print(json.dumps(summary))
        else:
            print(json.dumps(evaluate(args.artifact), indent=2))
    except (ArtifactError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
