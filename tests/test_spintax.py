"""Spintax: {a|b} picks one alternative per recipient, fixed when the row is written."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import textwrap
import tracemalloc
from collections import Counter

import pytest

from tests.conftest import AUTH
from tests.test_app_page import sign_in
from utils.contacts import parse_contacts_file
from utils.recipients import MAX_MESSAGE_CHARS, MAX_PLACEHOLDERS, build_recipients
from utils.spintax import MAX_VARIANTS
from utils.template import (
    MAX_NESTING,
    TemplateError,
    compile_template,
    placeholders,
    render,
)

NUMBERS = [f"+1415555{i:04d}" for i in range(100, 140)]


def texts(template: str, variables: dict | None = None, n: int = 400) -> Counter:
    """What `n` renders with a seeded random source give, counted."""
    rng = random.Random(7)
    return Counter(render(template, variables or {}, rng) for _ in range(n))


def variants(template: str) -> int:
    return compile_template(template).variants


# ---------------------------------------------------------------- what a choice renders


def test_every_alternative_is_reached_over_many_renders():
    seen = texts("{Hi|Hello|Hey} there")
    assert set(seen) == {"Hi there", "Hello there", "Hey there"}
    assert min(seen.values()) > 80  # about a third each of 400


def test_the_default_picks_differ_between_recipients_and_reach_every_alternative():
    seen = Counter(render("{a|b|c}", {"phone": phone}) for phone in NUMBERS)
    assert set(seen) == {"a", "b", "c"}


def test_nested_choices():
    assert set(texts("{a|{b|c}}")) == {"a", "b", "c"}
    assert set(texts("{{a|b}|c}")) == {"a", "b", "c"}  # "{{" opening a choice is that choice
    assert set(texts("<{x{1|2}|y}>")) == {"<x1>", "<x2>", "<y>"}


def test_an_empty_alternative():
    assert set(texts("Hi{|!}")) == {"Hi", "Hi!"}
    assert set(texts("{|}")) == {""}


def test_a_placeholder_inside_a_choice_is_filled():
    assert set(texts("{Hi {name}|Hello}!", {"name": "Ana"})) == {"Hi Ana!", "Hello!"}
    assert placeholders("{Hi {First Name}|Hello} {x|{Order ID}}") == ["first_name", "order_id"]


def test_double_braces_outside_choices_are_literal():
    assert render("{{a|b}}", {}) == "{a|b}"
    assert render("{{x}|y", {}) == "{x}|y"
    assert set(texts("{{{a|b}}}")) == {"{a}", "{b}"}
    assert set(texts("{{x}} {a|b}")) == {"{x} a", "{x} b"}


def test_a_bar_outside_braces_is_text():
    assert render("a | b || c", {}) == "a | b || c"
    assert variants("a | b") == 1


def test_lone_and_unbalanced_braces_are_kept_as_typed():
    assert render("{a|b", {}) == "{a|b"
    assert render("a|b}", {}) == "a|b}"
    assert set(texts("{a|b}}")) == {"a}", "b}"}
    assert set(texts("{ {a|b}")) == {"{ a", "{ b"}
    # a group without a bar of its own is no choice; the choice inside it still is
    assert set(texts("x {a {b|c} d}")) == {"x {a b d}", "x {a c d}"}
    assert render("{}|{ }", {}) == "{}|{ }"
    assert set(texts("{a|{}}")) == {"a", "{}"}


def test_a_choice_may_span_lines():
    assert set(texts("{Hi,\nAna|Hello}")) == {"Hi,\nAna", "Hello"}


def test_a_template_without_choices_renders_as_before():
    template = "Hi {Name}, 100% {{x}} {name} {} { } a|b {a\nb}"
    compiled = compile_template(template)
    assert compiled.variants == 1 and compiled.occurrences == 2
    assert render(template, {"name": "Ana"}) == "Hi Ana, 100% {x} Ana {} { } a|b {a\nb}"
    assert compiled.examples({"name": "Ana"}) == [render(template, {"name": "Ana"})]


def test_a_missing_column_raises_whichever_alternative_is_picked():
    for _ in range(20):
        with pytest.raises(TemplateError) as info:
            render("{Hi|Hello {Coupon}}", {"name": "Ana"}, random.Random())
        assert info.value.name == "coupon"
    with pytest.raises(TemplateError):
        compile_template("{a|{b}}").length({})


# ---------------------------------------------------------------- one text per recipient


def test_a_recipient_gets_the_same_text_each_time_the_request_is_read():
    template = "{Hi|Hello|Hey} {name}, {a|b|c|d}"
    for phone in NUMBERS:
        variables = {"name": "Ana", "phone": phone}
        assert len({render(template, variables) for _ in range(5)}) == 1
    # ... and different templates pick independently
    first = [render("{a|b}", {"phone": p}) for p in NUMBERS]
    second = [render("{a|b} ", {"phone": p}).strip() for p in NUMBERS]
    assert first != second


def test_a_given_random_source_overrides_the_default():
    assert render("{a|b|c}", {}, _Always(2)) == "c"
    assert compile_template("{a|{b|c}}").fill({}, _Always(1)) == "c"


class _Always:
    def __init__(self, i):
        self.i = i

    def randrange(self, n):
        return self.i % n


# ---------------------------------------------------------------- counting variants


@pytest.mark.parametrize(
    "template, count",
    [
        ("Hi", 1),
        ("Hi {name}", 1),
        ("{a|b} {c|d|e}", 6),
        ("{a|{b|c}}", 3),
        ("{|!}", 2),
        ("{a|b}{{x|y}}", 2),
        ("{{a|b}|c}", 3),  # a choice opening with a choice, not a literal "{"
        ("{{a|b}} {{x}|y", 1),
        ("{x{1|2}|y} {p|q}", 6),
        ("{a|b}" * 10, 1024),
    ],
)
def test_variants_counts_the_combinations(template, count):
    assert variants(template) == count


def test_variants_is_capped_and_counted_without_listing_texts():
    assert variants("{a|b}" * 60) == MAX_VARIANTS  # 2**60 texts: never enumerated
    assert variants("{a|b|c|d|e|f|g|h|i|j}" * 9) == MAX_VARIANTS


def _binary(depth: int) -> str:
    """A choice of two, each alternative a choice of two, `depth` levels deep."""
    return "x" if depth == 0 else "{" + _binary(depth - 1) + "|" + _binary(depth - 1) + "}"


def test_ten_nested_levels_of_two_are_counted_arithmetically():
    template = _binary(10)
    compiled = compile_template(template)
    assert compiled.variants == 1024
    assert compiled.occurrences == 1023  # choices: refused by the placeholder cap on /send
    assert compiled.fill({}, random.Random(1)) == "x"
    chain = "".join("{a|" for _ in range(10)) + "z" + "}" * 10
    assert variants(chain) == 11


def test_nesting_deeper_than_the_limit_is_no_choice_and_stays_linear():
    deep = "{a|" * (MAX_NESTING + 1) + "z" + "}" * (MAX_NESTING + 1)
    text = render(deep, {}, _Always(1))
    assert text.startswith("{a|") and text.endswith("z}") and variants(deep) > 1


def test_sixty_four_kilobytes_of_braces_scan_within_a_cpu_limit():
    # Each "{" that opens no choice must not rescan the rest: 16,000 of them would be
    # quadratic. A 20-second CPU limit is far above what the linear scan needs.
    code = textwrap.dedent("""
        from utils.template import compile_template
        for t in ("{a|" * 16_000 + "}" * 16_000, "{ " * 32_000 + "{a|b}", "{a|b}" * 13_000,
                  "{x {" * 16_000, "{{|" * 21_000 + "}" * 21_000):
            c = compile_template(t)
            c.fill({}), c.variants, c.occurrences
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


# ---------------------------------------------------------------- the length bound


def test_the_length_bound_holds_whichever_alternative_is_picked():
    template = "{Hi {name}|Hello there {name} and {name}|Yo} {a|{bb|ccc {x}}}!"
    variables = {"name": "Ana María", "x": "é🎉" * 3, "phone": "1"}
    compiled = compile_template(template)
    longest = max(texts(template, variables), key=len)
    assert compiled.length(variables) == len(longest)  # the longest of each, together


def test_a_long_cell_inside_a_choice_is_refused_before_it_is_built():
    contacts = parse_contacts_file(f"phone,a\n{NUMBERS[0]},{'x' * 30_000}\n".encode(), "c.csv")
    tracemalloc.start()
    try:
        # The short alternative may be picked; the long one decides.
        built = build_recipients([contacts], "{hi|{a}{a}{a}}", "whatsapp", None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert built.recipients == []
    assert built.rejected[0]["reason"] == "message_too_long"
    assert peak < 20 * 1024 * 1024
    assert MAX_MESSAGE_CHARS < 3 * 30_000  # so only the long alternative is too long


# ---------------------------------------------------------------- through the API


def _preview(client, message, **extra):
    return client.post("/preview", json={"message": message, **extra}, headers=AUTH)


def test_preview_reports_variants_and_different_examples(client):
    body = {"contacts": [{"phone": NUMBERS[0], "name": "Ana"}]}
    resp = _preview(client, "{Hi|Hello} {name}, {see you|bye}{|!}", **body)
    assert resp.status_code == 200, resp.get_json()
    got = resp.get_json()
    assert got["variants"] == 8
    examples = got["variant_examples"]
    assert len(examples) == len(set(examples)) == 3
    assert examples[:2] == ["Hi Ana, see you", "Hello Ana, bye!"]
    assert all(e.split(",")[0] in ("Hi Ana", "Hello Ana") for e in examples)
    assert got["previews"][0]["text"] in {
        f"{a} Ana, {b}{c}" for a in ("Hi", "Hello") for b in ("see you", "bye") for c in ("", "!")
    }


def test_preview_without_choices_has_one_variant(client):
    got = _preview(client, "Hi {phone}", numbers=NUMBERS[:2]).get_json()
    assert got["variants"] == 1
    assert got["variant_examples"] == [f"Hi {NUMBERS[0]}"] == [got["previews"][0]["text"]]
    got = _preview(client, "", numbers=NUMBERS[:2]).get_json()
    assert (got["variants"], got["variant_examples"]) == (1, [])
    assert len(_preview(client, "{a|a}", numbers=NUMBERS[:1]).get_json()["variant_examples"]) == 1


def test_preview_shows_what_send_queues(client, queue):
    body = {"message": "{Hi|Hello|Hey} {phone}{|!}", "numbers": NUMBERS[:5]}
    shown = [p["text"] for p in _preview(client, **body).get_json()["previews"]]
    job = client.post("/send", json=body, headers=AUTH).get_json()
    rows, _ = queue.list_messages(job["job_id"], limit=100)
    assert [r["text"] for r in rows] == shown


def test_every_alternative_reaches_some_recipient_of_a_job(client, queue):
    job = client.post("/send", json={"message": "{a|b|c}", "numbers": NUMBERS}, headers=AUTH)
    rows, _ = queue.list_messages(job.get_json()["job_id"], limit=100)
    assert {r["text"] for r in rows} == {"a", "b", "c"}


def test_a_replayed_idempotency_key_matches_its_first_request(client, queue):
    # The request's hash covers every rendered text: a fresh pick would make it a conflict.
    body = {"message": "{Hi|Hello|Hey|Yo} {phone}", "numbers": NUMBERS}
    key = {**AUTH, "Idempotency-Key": "spin-1"}
    first = client.post("/send", json=body, headers=key)
    again = client.post("/send", json=body, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["job_id"] == first.get_json()["job_id"]


def test_a_resent_row_keeps_its_text(client, queue):
    job = client.post("/send", json={"message": "{a|b|c}", "numbers": NUMBERS}, headers=AUTH)
    job_id = job.get_json()["job_id"]
    assert client.post(f"/stop/{job_id}", headers=AUTH).status_code == 200
    copy = client.post(f"/jobs/{job_id}/resend", json={"statuses": ["cancelled"]}, headers=AUTH)
    assert copy.status_code == 202, copy.get_json()
    before, _ = queue.list_messages(job_id, limit=100)
    after, _ = queue.list_messages(copy.get_json()["job_id"], limit=100)
    assert [(r["phone"], r["text"]) for r in after] == [(r["phone"], r["text"]) for r in before]


@pytest.mark.parametrize("route", ["/preview", "/send"])
def test_an_unknown_column_inside_a_choice_is_the_same_422(client, queue, route):
    body = {"message": "{Hi {first}|Hello}", "numbers": NUMBERS[:1]}
    resp = client.post(route, json=body, headers=AUTH)
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == [
        {"field": "message", "message": "unknown placeholder {first}"}
    ]
    assert queue.count_jobs(active_only=False) == 0


def test_choices_count_against_the_placeholder_cap(client, queue):
    for message in ("{a|b}" * (MAX_PLACEHOLDERS + 1), _binary(10)):
        resp = client.post("/send", json={"message": message, "numbers": NUMBERS}, headers=AUTH)
        assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
        assert resp.get_json()["errors"][0]["message"] == "too many placeholders"
    got = _preview(client, "{a|b}" * 10, numbers=NUMBERS[:3]).get_json()
    assert got["variants"] == 1024 and len(got["variant_examples"]) == 3


def test_the_editor_explains_choices(client):
    assert sign_in(client).status_code == 303
    html = client.get("/app/new").get_data(as_text=True)
    assert "<code>{Hi|Hello}</code> picks one choice for each person" in html
    assert "<code>{{</code> and <code>}}</code> for a literal brace" in html
