"""The bench's load through the real `wrk` (Debian's 4.1.0): same contract as `run_load`.

wrk is C with one epoll loop per thread, so it spends a small fraction of the CPU per request that our
asyncio generator does on the same 2 cores; the figures then describe the servers, not the generator.

Facts below are read from wg/wrk at tag 4.1.0 (src/ is identical on master; Debian ships 4.1.0):
- src/wrk.lua `wrk.format` and SCRIPTING: a `request()` global makes the request dynamic; pre-build every
  variant in `init()` and only index in `request()`. `setup(thread)` runs in the main Lua state before
  the thread's `init()`, and `thread:set(name, value)` sets a global of that thread (src/script.c
  `script_init`).
- src/wrk.c `response_complete`: every complete answer counts in `summary.requests`; only `status > 399`
  counts in `errors.status`, so a 1xx or 3xx answer counts as OK here, where our Python generator calls
  anything outside 2xx an error (no server in the bench answers 3xx). A latency at or over `--timeout`
  (default 2 s, src/main.h SOCKET_TIMEOUT_MS) is not recorded and counts in `errors.timeout`.
- src/wrk.c `main`: before `done()`, `stats_correct` adds wrk's coordinated-omission correction to the
  latency histogram, so percentiles and mean are wrk's corrected ones (what wrk itself reports), max is not.
- src/script.c `script_summary`/`script_errors`/`script_stats_*`: duration and latencies are in µs;
  `latency:percentile(p)`, `latency.max`, `latency.mean`.
- src/units.c `scan_time` reads whole seconds, and `-d 0` is refused, so runs last whole seconds.
- A `response()` global makes wrk hand every header and body to Lua (SCRIPTING), which slows it down a
  lot; the `expect` check is therefore done before timing, once per distinct body, over plain HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loadtest.bench.loadgen import CONNECT_TIMEOUT_S, LoadError, LoadResult
from service.sources import BENCH

WRK_THREADS = 2  # wrk -t2, or fewer threads when there are fewer connections
EXIT_GRACE_S = 30.0  # wrk ends on its own after -d; this only bounds a hung process

# One JSON line from done(); the human-readable report wrk prints before it is ignored.
_DONE = """
function done(summary, latency, rates)
   local e = summary.errors
   io.write(string.format(
      '{"wrk_json": 1, "requests": %.17g, "duration_us": %.17g, "connect": %.17g, "read": %.17g, '
      .. '"write": %.17g, "status": %.17g, "timeout": %.17g, "p50_us": %.17g, "p90_us": %.17g, '
      .. '"p99_us": %.17g, "max_us": %.17g, "mean_us": %.17g}\\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""

_CYCLE = """
local next_thread = 0
function setup(thread)
   thread:set("offset", next_thread)
   next_thread = next_thread + 1
end

local prepared = {}
local index = 1
function init(args)
   for i, body in ipairs(bodies) do
      local headers = {["Content-Type"] = "application/json", ["X-Modelship-Source"] = source}
      prepared[i] = wrk.format("POST", path, headers, body)
   end
   -- threads start at different bodies so the two do not send the same one at the same moment
   index = ((offset or 0) * math.floor(#prepared / 2)) % #prepared + 1
end

function request()
   local req = prepared[index]
   index = index % #prepared + 1
   return req
end
"""


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def wrk_version(binary: str = "wrk") -> str:
    """wrk's own version line, e.g. `wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer`."""
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False)  # exits 1
    return done.stdout.splitlines()[0].strip() if done.stdout else "wrk (version unknown)"


def describe_loadgen(name: str) -> str:
    """The report's line on what made the load: the generator and, for wrk, its own version line."""
    if name != "wrk":
        return "python (loadtest/bench/loadgen.py, asyncio + uvloop, on the same cores as the servers)"
    binary = wrk_binary()
    return f"wrk -t{WRK_THREADS} ({wrk_version(binary) if binary else 'not installed'})"


def lua_literal(data: bytes) -> str:
    """A Lua string literal holding exactly `data` (printable ASCII kept, the rest as decimal escapes)."""
    out = []
    for byte in data:
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_script(path: str, bodies: Sequence[bytes], source: str = BENCH) -> str:
    """The script: every body pre-formatted per thread and cycled, then one JSON line at the end."""
    listed = ",\n".join(f"   {lua_literal(body)}" for body in bodies)
    head = f"-- written by loadtest/bench/wrk.py\nbodies = {{\n{listed}\n}}\npath = {lua_literal(path.encode())}\n"
    head += f"source = {lua_literal(source.encode())}\n"
    return head + _CYCLE + _DONE


def check_answers(host: str, port: int, path: str, bodies: Sequence[bytes], expect: bytes) -> int:
    """POST each distinct body once; a 2xx without `expect` is a LoadError. Returns the 2xx count.

    A non-2xx is left to the timed run, which counts it as an error, as the Python generator does.
    """
    connection = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT_S)
    ok = 0
    try:
        for body in dict.fromkeys(bodies):
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            text = answer.read()
            if 200 <= answer.status < 300:
                ok += 1
                if expect not in text:
                    raise LoadError(
                        f"{host}:{port}{path} answered {answer.status} without {expect!r}: {text[:200]!r} "
                        f"(to body {body[:120]!r}); not timed"
                    )
    except OSError as exc:
        raise LoadError(f"cannot connect to {host}:{port}: {exc!r}") from exc
    finally:
        connection.close()
    return ok


def _reap(process: subprocess.Popen[bytes], limit_s: float) -> float:
    """Wait for wrk and return its own CPU seconds (user + system), from its exact rusage."""
    deadline = time.monotonic() + limit_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return float(usage.ru_utime + usage.ru_stime)
        if time.monotonic() > deadline:
            process.kill()  # never poll() here: it would reap wrk and lose its rusage
            deadline = float("inf")
        time.sleep(0.02)


def _run_once(binary: str, script: Path, url: str, connections: int, seconds: int) -> tuple[dict[str, Any], float]:
    """One wrk run; returns done()'s JSON and wrk's CPU seconds."""
    threads = min(WRK_THREADS, connections)
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out_path, err_path = script.with_suffix(".out"), script.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err)  # argv built here, no shell
        cpu = _reap(process, seconds + EXIT_GRACE_S)
    output, errors = out_path.read_text(errors="replace"), err_path.read_text(errors="replace").strip()
    lines = [line for line in output.splitlines() if line.startswith('{"wrk_json"')]
    if process.returncode != 0 or not lines:
        reason = errors or output.strip()[-300:] or f"exit code {process.returncode}"
        if "unable to connect" in reason:
            raise LoadError(f"cannot connect: {reason}")
        raise LoadError(f"wrk failed ({' '.join(argv)}): {reason}")
    return dict(json.loads(lines[-1])), cpu


def _ok(summary: dict[str, Any]) -> int:
    return int(summary["requests"] - summary["status"])  # wrk's OK: status <= 399 (see the module docstring)


def _result(summary: dict[str, Any], cpu: float, connections: int, answered_total: int) -> LoadResult:
    if summary["requests"] <= 0:
        raise LoadError("no answer at all in the measured window")
    duration_s = summary["duration_us"] / 1e6
    socket_errors = summary["connect"] + summary["read"] + summary["write"] + summary["timeout"]
    return LoadResult(
        connections=connections,
        duration_s=duration_s,
        answers=int(summary["requests"]),
        statuses={},  # wrk only tells status > 399 from the rest, not the codes themselves
        errors=int(summary["status"] + socket_errors),
        rps=_ok(summary) / duration_s,
        p50_ms=summary["p50_us"] / 1e3,
        p90_ms=summary["p90_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
        max_ms=summary["max_us"] / 1e3,
        mean_ms=summary["mean_us"] / 1e3,
        loadgen_cpu_s=cpu,
        answered_total=answered_total,
    )


def run_wrk(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    *,
    connections: int,
    warmup_s: float,
    duration_s: float,
    expect: bytes = b"",
    on_window: Callable[[str], None] = lambda _phase: None,
    binary: str | None = None,
    source: str = BENCH,
) -> LoadResult:
    """Drive host:port with POSTs of `bodies` (cycled) through wrk, as `loadgen.run_load` does.

    Checks `expect` on one answer per distinct body first, runs an unmeasured warm-up, then the measured
    run between `on_window("start")` and `on_window("end")`. Durations are rounded to whole seconds (≥ 1;
    a warm-up of 0 is skipped). Connections are split evenly over min(2, connections) threads.
    """
    binary = binary or wrk_binary()
    if binary is None:
        raise LoadError("wrk is not installed: run `make wrk` (Debian package wrk) or use --loadgen python")
    threads = min(WRK_THREADS, max(connections, 1))
    connections = threads * max(connections // threads, 1)  # wrk gives each thread connections // threads
    answered = check_answers(host, port, path, bodies, expect)
    url = f"http://{host}:{port}{path}"
    with tempfile.TemporaryDirectory(prefix="modelship-wrk-") as folder:
        script = Path(folder) / "bench.lua"
        script.write_text(lua_script(path, bodies, source))
        if warmup_s > 0:
            warm, _ = _run_once(binary, script, url, connections, max(1, round(warmup_s)))
            answered += _ok(warm)
        on_window("start")
        summary, cpu = _run_once(binary, script, url, connections, max(1, round(duration_s)))
        on_window("end")
    return _result(summary, cpu, connections, answered + _ok(summary))
