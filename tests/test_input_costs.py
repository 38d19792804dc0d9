"""Small inputs with large costs (issue 12): each is refused or handled without the blow-up.

No timing here (bench/input_costs.py measures); these assert what the fix changed: work done
once instead of per column, a length known before a text is built, clear refusals.
"""

from __future__ import annotations

import csv
import io
import resource
import subprocess
import sys
import textwrap
import tracemalloc

from tests.conftest import AUTH
from utils.contacts import MAX_COLUMNS, _phone_index, _variable_names, parse_contacts_file
from utils.recipients import MAX_PLACEHOLDERS, build_recipients
from utils.template import compile_template, render

GOOD = "+14155550101"


def _csv_form(text: str, message: str = "Hi") -> dict:
    return {"message": message, "file": (io.BytesIO(text.encode()), "contacts.csv")}


def test_twenty_thousand_repeated_headers_are_named_within_a_cpu_limit():
    # The old naming loop was cubic here (a probe per earlier repeat, each a list scan):
    # hours of CPU. A 20-second CPU limit is hundreds of times what the linear loop needs.
    code = textwrap.dedent("""
        from utils.contacts import _variable_names
        names = _variable_names(["x"] * 20_000 + ["First Name"] * 3)
        assert names[:3] == ["x", "x_2", "x_3"] and names[19_999] == "x_20000", names[:5]
        assert names[-3:] == ["first_name", "first_name_2", "first_name_3"]
    """)

    def limit_cpu():
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        preexec_fn=limit_cpu,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_unique_names_are_the_smallest_free_suffix_as_before():
    assert _variable_names(["x", "x_2", "x", "x", "X_3", ""]) == [
        "x",
        "x_2",
        "x_3",
        "x_4",
        "x_3_2",
        "column_6",
    ]
    assert _variable_names(["a", "a", "a_2", "a"]) == ["a", "a_2", "a_2_2", "a_3"]


def test_a_thousand_repeated_headers_preview(client):
    text = "phone," + ",".join("x" * 999) + "\n" + GOOD + "\n"
    resp = client.post(
        "/preview", data=_csv_form(text), headers=AUTH, content_type="multipart/form-data"
    )
    assert resp.status_code == 200, resp.get_json()
    columns = resp.get_json()["columns"]
    assert columns[:3] == ["phone", "x", "x_2"] and columns[-1] == "x_999"


def test_a_file_wider_than_the_column_limit_is_422_naming_it(client, queue):
    for text in (
        "phone," + ",".join(f"c{i}" for i in range(MAX_COLUMNS)) + f"\n{GOOD}\n",
        f"phone,name\n{GOOD},Ana\n+14155550102" + ",x" * MAX_COLUMNS + "\n",
    ):
        for route in ("/preview", "/send"):
            resp = client.post(
                route, data=_csv_form(text), headers=AUTH, content_type="multipart/form-data"
            )
            assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
            body = resp.get_json()
            assert f"{MAX_COLUMNS:,}" in body["detail"] and body["errors"][0]["field"] == "file"
    assert queue.count_jobs(active_only=False) == 0


def test_one_wide_row_does_not_widen_every_row():
    text = (
        "phone,name\n+14155550100"
        + ",x" * 500
        + "\n"
        + "".join(f"+1415555{i:04d}\n" for i in range(1, 200))
    )
    result = parse_contacts_file(text.encode(), "c.csv")
    assert len(result.columns) == 501
    assert result.contacts[5].variables == {"phone": "+14155550005"}


class PassCounter(list):
    """Rows that count how often they are walked through."""

    passes = 0

    def __iter__(self):
        self.passes += 1
        return super().__iter__()


def test_the_phone_column_is_guessed_in_one_pass_over_the_rows():
    names = [f"c{i}" for i in range(300)]
    rows = PassCounter(
        [(2, ["a"])] * 50 + [(i, [""] * 299 + [f"+1415555{i:04d}"]) for i in range(3, 60)]
    )
    assert _phone_index(names, names, rows, None) == 299
    assert rows.passes == 1


def test_a_long_cell_times_many_placeholders_is_refused_before_it_is_built():
    contacts = parse_contacts_file(f"phone,a\n{GOOD},{'x' * 30_000}\n".encode(), "c.csv")
    tracemalloc.start()
    try:
        built = build_recipients([contacts], "{a}" * 20_000, "whatsapp", None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert built.recipients == []
    assert built.rejected == [{"row": 2, "phone": GOOD, "reason": "message_too_long"}]
    assert peak < 20 * 1024 * 1024  # building the text would take 600 MB


def test_the_length_known_beforehand_is_the_rendered_length():
    templates = ["Hi {name} 100% {{x}} {name}", "%s %d {{", "{}{ }{a}{A}", "{a}" * 5, ""]
    variables = {"name": "Ana %s", "a": "é🎉"}
    for template in templates:
        compiled = compile_template(template)
        text = render(template, variables)
        assert compiled.fill(variables) == text
        assert compiled.length(variables) == len(text)


def test_a_message_with_too_many_placeholders_is_422(client, queue):
    body = {"message": "{phone}" * (MAX_PLACEHOLDERS + 1), "numbers": [GOOD]}
    for route in ("/preview", "/send"):
        resp = client.post(route, json=body, headers=AUTH)
        assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
        assert resp.get_json()["errors"][0]["field"] == "message"
    assert queue.count_jobs(active_only=False) == 0
    body["message"] = "{phone} " * MAX_PLACEHOLDERS
    assert client.post("/send", json=body, headers=AUTH).status_code == 202


def test_a_job_whose_texts_add_up_past_the_limit_is_422(client, queue):
    numbers = [f"+1415555{i:04d}" for i in range(800)]
    resp = client.post("/send", json={"message": "y" * 65_000, "numbers": numbers}, headers=AUTH)
    assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
    assert "50,000,000" in resp.get_json()["detail"]
    assert queue.count_jobs(active_only=False) == 0


def test_the_sniffer_reads_a_few_kilobytes_only(monkeypatch):
    # csv.Sniffer's quote regex is quadratic in its sample: 16 KB of ',"a' cost a second of
    # CPU per upload. A spy on the standard library records what it is handed.
    seen = []
    original = csv.Sniffer.sniff

    def spy(self, sample, delimiters=None):
        seen.append(len(sample))
        return original(self, sample, delimiters)

    monkeypatch.setattr(csv.Sniffer, "sniff", spy)
    text = "phone,name\n" + "".join(f'+1415555{i:04d},"a\n' for i in range(3000))
    result = parse_contacts_file(text.encode(), "c.csv")
    assert result.columns == ["phone", "name"]  # the quotes join lines; only cost matters
    assert seen and max(seen) <= 4096
