"""`python -m bench.run [--quick]`: every benchmark in turn, then docs/BENCHMARKS.md.

The raw results are also kept as JSON (path printed at the end); `--from-json FILE` renders
the report again from such a file without measuring anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

from . import (
    api_create,
    browser_path,
    browser_service,
    careful_claims,
    conversations,
    inbox_sweep,
    input_costs,
    pacing,
    pg_claims,
    pg_status,
    pool_rate,
    queue_throughput,
    report,
    status_latency,
)
from .common import ROOT, machine, say

SECTIONS = {
    "api": api_create.run,
    "inputs": input_costs.run,
    "queue": queue_throughput.run,
    "careful": careful_claims.run,
    "status": status_latency.run,
    "browser": browser_path.run,
    "service": browser_service.run,
    "pacing": pacing.run,
    "conversations": conversations.run,
    "inbox": inbox_sweep.run,
    "pg": pg_claims.run,
    "pg_status": pg_status.run,
    "pool": pool_rate.run,
}
PRODUCT_PATHS = ["api", "utils", "message_queue", "worker", "app.py", "config.py", "run_worker.py"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 3 minutes)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    parser.add_argument("--output", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--from-json", help="render the report from saved results only")
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
    else:
        results = measure(args, argv if argv is not None else sys.argv[1:])
    with open(args.output, "w") as f:
        f.write(report.render(results))
    say(f"wrote {args.output}")
    return 0


def measure(args, argv) -> dict:
    names = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(names) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    results = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": _command(argv),
            "quick": args.quick,
            "machine": machine(),
            "chromium": _chromium(),
            "revision": _git("rev-parse", "--short", "HEAD"),
            "dirty": _dirty(),
        }
    }
    for name in names:
        say(f"== {name} ==")
        try:
            results[name] = SECTIONS[name](args.quick)
        except Exception as exc:  # one broken section must not cost the others' numbers
            say(f"{name} failed: {exc!r}")
            results["failed"] = {**results.get("failed", {}), name: repr(exc)[:2000]}
        _save(results)
    results["meta"]["minutes"] = (time.monotonic() - started) / 60
    results["meta"]["revision_end"] = _git("rev-parse", "--short", "HEAD")
    results["meta"]["dirty_end"] = _dirty()
    results["meta"]["load_end"] = os.getloadavg()[0]
    path = _save(results)
    say(f"raw results in {path}")
    return results


def _command(argv) -> str:
    make = os.environ.get("BENCH_VIA_MAKE")
    direct = " ".join([".venv/bin/python -m bench.run", *argv])
    if make is None:
        return direct
    args = f' BENCH_ARGS="{make}"' if make.strip() else ""
    return f"make bench{args}  # = {direct}"


def _save(results: dict) -> str:
    path = os.path.join(tempfile.gettempdir(), "bench-results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=str)
    return path


def _git(*args) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.rstrip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _dirty() -> str:
    """Others may be editing the product while it is measured: say what was not committed."""
    changed = _git("status", "--porcelain", "--", *PRODUCT_PATHS)
    if changed in ("", "unknown"):
        return ""
    files = [line[3:] for line in changed.splitlines() if len(line) > 3]
    return f" plus uncommitted changes to {', '.join(files)}"


def _chromium() -> str:
    try:
        out = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
        return out.split(" built on")[0] or "Chromium (version unknown)"
    except (OSError, subprocess.SubprocessError):
        return "Chromium (version unknown)"


if __name__ == "__main__":
    sys.exit(main())
