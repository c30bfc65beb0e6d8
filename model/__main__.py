"""CLI: python -m model train|evaluate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from model.cliargs import OneLineParser, fail
from model.keyvalue import parse_pairs
from model.recipes import RECIPES, describe_recipes


def _parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m model", description=__doc__, epilog=describe_recipes())
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train", help="train a recipe into a versioned artifact folder", epilog=describe_recipes()
    )
    train_parser.add_argument("--recipe", default="house-price", choices=sorted(RECIPES))
    train_parser.add_argument("--out", type=Path, default=Path("artifacts"))
    train_parser.add_argument("--seed", type=int, default=42)
    train_parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="recipe parameter"
    )
    evaluate_parser = commands.add_parser("evaluate", help="print an artifact's held-out metrics as JSON")
    evaluate_parser.add_argument("artifact", type=Path)
    return parser


def _overrides(items: list[str]) -> dict[str, Any]:
    try:
        return parse_pairs(items, "--set")
    except ValueError as exc:
        fail(f"error: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imported here: scikit-learn takes seconds to load, and `--help` or a typo should not wait for it.
    from model.artifact import ArtifactError
    from model.evaluate import evaluate
    from model.recipes import RecipeError
    from model.train import train

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
    except (ArtifactError, RecipeError) as exc:
        fail(f"error: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
