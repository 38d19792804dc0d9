"""Small crafted inputs and what they cost the API: CPU seconds and peak memory per request.

The rule held: no request under 1 MB costs the API more than 1 s of CPU or 100 MB of memory.
Each case is one request of at most 1 MB, posted to /preview and to /send through the Flask
test client in a fresh subprocess, so the memory high-water mark (ru_maxrss) is that request's
own. The child warms the app up with a tiny request first (imports, phone metadata), then
measures only the crafted one. A case that runs past the time limit or the memory ceiling is
killed and reported as such: that is how the code before the fix answered several of them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from .common import ROOT, phone, say

LIMIT_BYTES = 1024 * 1024
CPU_GOAL_S, MEMORY_GOAL_MB = 1.0, 100.0
MEMORY_CEILING = 3 * 1024**3  # the child's address space: keeps a runaway case off the box
ROUTES = ("/preview", "/send")


def _csv(text: str) -> tuple[str, dict]:
    return "form", {"message": "Hi", "file": (text.encode(), "contacts.csv")}


def _numbers(n: int) -> str:
    return "phone\n" + "\n".join(phone(i).replace(" ", "").replace("-", "") for i in range(n))


def _rows_fit(row_bytes: int, room: int = LIMIT_BYTES - 20_000) -> int:
    return room // row_bytes


# name -> (what it is, builder returning (kind, payload))
CASES = {
    "header_2500_x": (
        "CSV header of 2,500 repeated names `x,x,...` (5 KB)",
        lambda: _csv("phone," + ",".join("x" * 2500) + "\n+14155550101\n"),
    ),
    "header_1mb_x": (
        "CSV header `x,x,...` filling 1 MB",
        lambda: _csv("phone," + ",".join("x" * 500_000) + "\n+14155550101\n"),
    ),
    "wide_row_then_many": (
        "one 1,000-cell row, then ~70,000 one-cell rows",
        lambda: _csv("phone,name\n+14155550100" + ",x" * 999 + "\n" + _numbers(_rows_fit(15))[6:]),
    ),
    "sparse_no_phone_header": (
        "1,000 columns, no phone header, 190,000 rows of one cell",
        lambda: _csv(",".join(f"c{i}" for i in range(1000)) + "\n" + "a\n" * 190_000),
    ),
    "long_cell_x_placeholders": (
        "template `{a}` x 20,000, one cell of 30,000 chars (90 KB)",
        lambda: (
            "json",
            {"message": "{a}" * 20_000, "contacts": [{"phone": "+14155550101", "a": "x" * 30_000}]},
        ),
    ),
    "placeholders_x_rows": (
        "template of 9,000 `{phone}`, ~37,000 numbers",
        lambda: (
            "json",
            {
                "message": "{phone}" * 9_000,
                "numbers": [phone(i) for i in range(_rows_fit(24, 900_000))],
            },
        ),
    ),
    "long_template_x_rows": (
        "64 KB template without placeholders, ~42,000 numbers",
        lambda: (
            "json",
            {"message": "y" * 65_000, "numbers": [phone(i) for i in range(_rows_fit(21, 900_000))]},
        ),
    ),
    "texts_at_the_job_cap": (
        "1,200-char template with {phone}, ~40,000 numbers (48M chars)",
        lambda: (
            "json",
            {"message": "{phone} " + "y" * 1_190, "numbers": [phone(i) for i in range(40_000)]},
        ),
    ),
    "json_contact_many_keys": (
        "JSON: one contact with 60,000 fields",
        lambda: (
            "json",
            {
                "message": "Hi",
                "contacts": [{"phone": "+14155550101", **{f"k{i}": "" for i in range(60_000)}}],
            },
        ),
    ),
    "sniffer_quotes": (
        "16 KB CSV line of `,\"a` repeated (csv.Sniffer's quote regex)",
        lambda: _csv("phone" + ',"a' * 5_400 + "\n+14155550101\n"),
    ),
    "deep_json_list": ("`[` x 50,000", lambda: ("raw", b"[" * 50_000)),
    "deep_json_object": ('`{"a":` x 50,000', lambda: ("raw", b'{"a":' * 50_000)),
    "many_braces": (
        "template of 60,000 `{`, `{x` and `}`",
        lambda: (
            "json",
            {"message": "{" * 20_000 + "{x" * 10_000 + "}" * 20_000, "numbers": ["+14155550101"]},
        ),
    ),
    "tiny_rows_txt": (
        "TXT of 1-digit lines up to 1 MB (500,000 rows)",
        lambda: ("form", {"message": "Hi", "file": (b"1\n" * 500_000, "numbers.txt")}),
    ),
    "same_number_rows": (
        "CSV of one number repeated ~80,000 times",
        lambda: _csv("phone\n" + "+14155550101\n" * _rows_fit(13)),
    ),
    "huge_single_line_txt": (
        "TXT of one 1 MB line",
        lambda: (
            "form",
            {"message": "Hi", "file": (b"+1415555" + b"0" * (LIMIT_BYTES - 30_000), "n.txt")},
        ),
    ),
    "xlsx_many_columns": ("XLSX: 1,000 columns x 180 rows of inline strings", lambda: _xlsx()),
    "json_numbers_200k": (
        "JSON `numbers` of 200,001 one-digit strings",
        lambda: ("json", {"message": "Hi", "numbers": ["1"] * 200_001}),
    ),
}


def _xlsx():
    import io

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["phone"] + [f"c{i}" for i in range(999)])
    for r in range(180):
        sheet.append([phone(r)] + [f"v{r}_{i}" for i in range(999)])
    out = io.BytesIO()
    book.save(out)
    return "form", {"message": "Hi", "file": (out.getvalue(), "contacts.xlsx")}


def _request_args(kind: str, payload) -> tuple[dict, int]:
    """Test-client keyword arguments for a payload, and its size in bytes."""
    import io

    if kind == "raw":
        return {"data": payload, "content_type": "application/json"}, len(payload)
    if kind == "json":
        raw = json.dumps(payload).encode()
        return {"data": raw, "content_type": "application/json"}, len(raw)
    size = sum(len(v[0]) if isinstance(v, tuple) else len(v.encode()) for v in payload.values())
    data = {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in payload.items()}
    return {"data": data, "content_type": "multipart/form-data"}, size


def measure_one(case: str, route: str) -> dict:
    """In this (fresh) process: one crafted request; its status, CPU seconds and RSS growth."""
    from app import create_app
    from config import Settings
    from message_queue import Queue

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            api_key="bench-key-0123456789abcdef",
            secret_key="s" * 32,
            database_path=f"{tmp}/q.db",
            upload_dir=f"{tmp}/up",
            chrome_profile_dir=f"{tmp}/p",
            max_upload_mb=2,
        )
        client = create_app(settings, Queue(settings.database_path)).test_client()
        headers = {"X-API-Key": settings.api_key}
        client.post(
            route, json={"message": "Hi {phone}", "numbers": ["+14155550101"]}, headers=headers
        )  # warm-up: imports, phone metadata, the database
        kwargs, size = _request_args(*CASES[case][1]())
        assert size <= LIMIT_BYTES, f"{case} is {size:,} bytes, over the 1 MB the rule is about"
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before = time.process_time()
        resp = client.post(route, headers=headers, **kwargs)
        cpu = time.process_time() - cpu_before
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        detail = (resp.get_json(silent=True) or {}).get("detail", "")
    return {
        "case": case,
        "route": route,
        "bytes": size,
        "status": resp.status_code,
        "cpu_s": cpu,
        "rss_growth_mb": (rss_after - rss_before) / 1024,
        "detail": str(detail)[:160],
    }


def run_child(case: str, route: str, timeout: float) -> dict:
    """measure_one in a fresh interpreter, with a time limit and a memory ceiling."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))

    cmd = [sys.executable, "-m", "bench.input_costs", "--one", case, route]
    started = time.monotonic()
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, preexec_fn=limit
        )
    except subprocess.TimeoutExpired:
        return {
            "case": case,
            "route": route,
            "status": f"killed after {timeout:.0f} s",
            "cpu_s": None,
            "rss_growth_mb": None,
        }
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1][:160]
        return {
            "case": case,
            "route": route,
            "status": "crashed",
            "detail": tail,
            "cpu_s": None,
            "rss_growth_mb": None,
            "wall_s": time.monotonic() - started,
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def within_goal(row: dict) -> bool:
    """Under 1 s of CPU and 100 MB of memory, answered without a 5xx."""
    return (
        isinstance(row["status"], int)
        and row["status"] < 500
        and row["cpu_s"] <= CPU_GOAL_S
        and row["rss_growth_mb"] <= MEMORY_GOAL_MB
    )


def run(quick: bool = False) -> dict:
    """Every case against both routes; the section's results."""
    timeout = 30 if quick else 120
    rows = []
    for case in CASES:
        for route in ROUTES:
            row = run_child(case, route, timeout)
            row["what"] = CASES[case][0]
            row["ok"] = row["cpu_s"] is not None and within_goal(row)
            say(f"{case} {route}: {row['status']} cpu={row['cpu_s']} rss+={row['rss_growth_mb']}")
            rows.append(row)
    return {
        "rows": rows,
        "timeout_s": timeout,
        "cpu_goal_s": CPU_GOAL_S,
        "memory_goal_mb": MEMORY_GOAL_MB,
        "goal_met": all(r["ok"] for r in rows),
    }


def table(result: dict) -> list[str]:
    """The results as Markdown table lines."""
    out = [
        "| input | route | bytes | answer | CPU s | peak RSS growth | within |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        cpu = "-" if r["cpu_s"] is None else f"{r['cpu_s']:.2f}"
        rss = "-" if r["rss_growth_mb"] is None else f"{r['rss_growth_mb']:.0f} MB"
        size = f"{r['bytes']:,}" if r.get("bytes") else "-"
        out.append(
            f"| {r['what']} | {r['route']} | {size} | {r['status']} | {cpu} | {rss} | "
            f"{'yes' if r['ok'] else '**no**'} |"
        )
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        os.environ.setdefault("PYTHONHASHSEED", "0")
        print(json.dumps(measure_one(sys.argv[2], sys.argv[3])))
    else:
        print("\n".join(table(run(quick="--quick" in sys.argv))))
