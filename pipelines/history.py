"""Stage `history`: a stack's updates as a table a person on call can read at 3 a.m."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC

from pipelines import commands
from pipelines.canary_state import RECORD as CANARY_RECORD
from pipelines.report import render_table, short_digest
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import LOADCHECK, SMOKE, Target, Update, deployed_update

HEADERS = ["#", "time (UTC)", "kind", "result", "model version", "digest", "smoke", "loadcheck", "canary", "message"]


@dataclass(frozen=True)
class HistoryRow:
    number: int
    time: str
    kind: str
    result: str
    model_version: str | None
    image_ref: str | None
    smoke: str | None
    loadcheck: str | None
    message: str
    current: bool
    canary: str | None = None  # a canary step's or run's verdict (pipelines/canary_report.py)


@dataclass(frozen=True)
class HistoryResult:
    stack: str
    target: str
    rows: list[HistoryRow]

    def table(self) -> str:
        return render_history(self.rows)


def to_rows(updates: list[Update]) -> list[HistoryRow]:
    live = deployed_update(updates)
    return [
        HistoryRow(
            number=u.number,
            time=u.start_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            kind=u.kind,
            result=u.result,
            model_version=u.model_version,
            image_ref=u.image_ref,
            smoke=u.annotations.get(SMOKE),
            loadcheck=u.annotations.get(LOADCHECK),
            message=u.message,
            current=live is not None and u.number == live.number,
            canary=u.annotations.get(CANARY_RECORD),
        )
        for u in updates
    ]


def clip(text: str, width: int) -> str:
    """TEXT cut after about WIDTH characters, at a space, with "…": a word that starts inside WIDTH (a version
    id, a sha) is always shown whole."""
    cut = text.find(" ", width)
    return text if len(text) <= width or cut < 0 else text[:cut] + " …"


def render_history(rows: list[HistoryRow], message_width: int = 60) -> str:
    """Newest first; `*` marks the update whose config the stack runs now."""
    if not rows:
        return "(no updates)"
    cells = [
        [
            f"{'*' if r.current else ' '}{r.number}",
            r.time,
            r.kind,
            r.result,
            r.model_version or "-",
            short_digest(r.image_ref),
            r.smoke or "-",
            r.loadcheck or "-",
            clip(r.canary, 30) if r.canary else "-",
            clip(r.message.splitlines()[0], message_width) if r.message else "",
        ]
        for r in rows
    ]
    return render_table(HEADERS, cells) + "\n* = deployed now (newest successful update)"


def history(target: Target, stack: str, limit: int | None = None) -> HistoryResult:
    """Read STACK's update history (Pulumi `stack.history()` or the local history file).

    Args:
        target: where the stack lives.
        stack: the stack name.
        limit: show only the newest LIMIT updates.

    Returns:
        HistoryResult; `table()` renders number, time, model version, digest, result, verdicts, message.
    """
    updates = target.select(stack).history()
    rows = to_rows(updates)
    return HistoryResult(stack, target.kind, rows[:limit] if limit else rows)


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.stack_options(parser)
    parser.add_argument("--limit", type=int)


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = history(get_target(args.target, settings), args.stack, args.limit)
    commands.out(f"history of {args.stack} ({args.target}), newest first:\n{result.table()}")
    return commands.finish(args, "history", result, True)


STAGE = commands.Stage("history", "show a stack's updates", _add_arguments, _run)
