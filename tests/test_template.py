"""Templates: {column} placeholders, literal braces, and nothing evaluated."""

import pytest

from utils.template import TemplateError, normalize_name, placeholders, render


def test_placeholders_are_normalised_and_listed_once_in_order():
    template = "Hi {Name}, order {Order  ID} for {name} ({ order id })"
    assert placeholders(template) == ["name", "order_id"]


def test_render_fills_normalised_names():
    out = render("Hi {Name}, your order {Order ID} is ready", {"name": "Ana", "order_id": "A-17"})
    assert out == "Hi Ana, your order A-17 is ready"


def test_double_braces_are_literal_braces():
    assert placeholders("{{literal}} and {{ x }}") == []
    assert render("{{literal}} {name}", {"name": "Ana"}) == "{literal} Ana"
    assert render("{{{name}}}", {"name": "Ana"}) == "{Ana}"


def test_lone_braces_are_kept_as_typed():
    template = "a { b, c } d} e{ {} { }"
    assert placeholders("a { b and } d") == ["b_and"]
    assert placeholders("price: 5 } or { 6") == []
    assert render("price: 5 } or { 6", {}) == "price: 5 } or { 6"
    assert render("{} and { }", {}) == "{} and { }"
    assert placeholders(template) == ["b,_c"]


def test_a_brace_pair_across_lines_is_not_a_placeholder():
    assert placeholders("{a\nb}") == []
    assert render("{a\nb}", {}) == "{a\nb}"


def test_missing_variable_names_it():
    with pytest.raises(TemplateError) as info:
        render("Hi {Name}, code {Coupon Code}", {"name": "Ana"})
    assert info.value.name == "coupon_code"
    assert "{coupon_code}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_attribute_syntax_is_an_ordinary_name_never_evaluated():
    assert placeholders("{0.__class__}") == ["0.__class__"]
    assert placeholders("{name.__init__.__globals__}") == ["name.__init__.__globals__"]
    assert render("{0.__class__}!", {"0.__class__": "plain"}) == "plain!"
    with pytest.raises(TemplateError) as info:
        render("{0.__class__}", {"0": "x"})
    assert info.value.name == "0.__class__"


def test_values_are_inserted_verbatim_not_expanded_again():
    assert render("{a}", {"a": "{b} {{c}}"}) == "{b} {{c}}"


def test_emoji_and_right_to_left_text_survive():
    template = "مرحبا {name} 👋🏽 שלום"
    assert render(template, {"name": "José 😀"}) == "مرحبا José 😀 👋🏽 שלום"


def test_a_template_without_placeholders_is_unchanged():
    text = "x" * 70_000
    assert placeholders(text) == []
    assert render(text, {}) == text


def test_normalize_name():
    assert normalize_name("  First \t Name ") == "first_name"
    assert normalize_name("E-Mail") == "e-mail"
    assert normalize_name("   ") == ""
