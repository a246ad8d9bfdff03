"""calshare.addresses: one normal form for addresses, and AddressError for everything else."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from calshare.addresses import (
    Mailbox,
    normalize_address,
    normalize_domain,
    parse_mailbox,
    split_addresses,
)
from calshare.errors import AddressError

# --- normalize_address


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("ann@example.org", "ann@example.org"),
        ("Ann.Smith@Example.ORG", "ann.smith@example.org"),
        ("  ann@example.org \t", "ann@example.org"),
        ("bob@Bücher.example", "bob@xn--bcher-kva.example"),
        ("bob@BÜCHER.example", "bob@xn--bcher-kva.example"),
        ("bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example"),
        ("kari@bergen.nordmann.no.", "kari@bergen.nordmann.no"),
        ("mailto:ann@example.org", "ann@example.org"),
        ("MAILTO:Ann@Example.org", "ann@example.org"),
        ("first+tag@example.org", "first+tag@example.org"),
        ("o'brien@example.org", "o'brien@example.org"),
        ("a-b_c.d@sub-domain.example.co.uk", "a-b_c.d@sub-domain.example.co.uk"),
        ("Åse@example.org", "åse@example.org"),
        ("x@" + "a" * 63 + ".org", "x@" + "a" * 63 + ".org"),
        ("l" * 64 + "@example.org", "l" * 64 + "@example.org"),
    ],
)
def test_normalize_address(given_: str, expected: str) -> None:
    assert normalize_address(given_) == expected
    assert normalize_address(expected) == expected


def test_normalize_domain() -> None:
    assert normalize_domain("Bücher.Example") == "xn--bcher-kva.example"
    assert normalize_domain("EXAMPLE.org.") == "example.org"


# --- parse_mailbox


@pytest.mark.parametrize(
    ("text", "address", "name"),
    [
        ("ann@example.org", "ann@example.org", ""),
        ("Ann <ann@example.org>", "ann@example.org", "Ann"),
        ("Ann Smith <Ann@Example.ORG>", "ann@example.org", "Ann Smith"),
        ('"Smith, Ann" <ann@example.org>', "ann@example.org", "Smith, Ann"),
        ('"Smith, Ann (Sales)" <ann@example.org>', "ann@example.org", "Smith, Ann (Sales)"),
        ('"Dr. \\"Ann\\" Smith" <ann@example.org>', "ann@example.org", 'Dr. "Ann" Smith'),
        ("<ann@example.org>", "ann@example.org", ""),
        ("Kåre Ødegård <kare@Bücher.example>", "kare@xn--bcher-kva.example", "Kåre Ødegård"),
        ("=?utf-8?q?K=C3=A5re?= <kare@example.org>", "kare@example.org", "Kåre"),
        ("mailto:ann@example.org", "ann@example.org", ""),
    ],
)
def test_parse_mailbox(text: str, address: str, name: str) -> None:
    mailbox = parse_mailbox(text)
    assert mailbox == Mailbox(address, name)


@pytest.mark.parametrize(
    "text",
    [
        '"Smith, Ann" <ann@example.org>',
        '"Dr. \\"Ann\\" Smith" <ann@example.org>',
        "Ann <ann@example.org>",
        "ann@example.org",
        "Kåre Ødegård <kare@example.org>",
    ],
)
def test_mailbox_string_parses_back_to_itself(text: str) -> None:
    """str(Mailbox) goes into headers and config (mail.from): it must read back the same."""
    mailbox = parse_mailbox(text)
    assert parse_mailbox(str(mailbox)) == mailbox


# --- refusals: always AddressError, never another exception

BAD = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("ann.example.org", id="no-at"),
    pytest.param("@example.org", id="no-local-part"),
    pytest.param("ann@", id="no-domain"),
    pytest.param("a@b@example.org", id="two-at"),
    pytest.param("ann smith@example.org", id="space-in-local"),
    pytest.param("ann@exa mple.org", id="space-in-domain"),
    pytest.param("a@example.org\r\nBcc: x@y.org", id="crlf-injection"),
    pytest.param("a@example.org\nBcc: x@y.org", id="lf-injection"),
    pytest.param("Ann <a@example.org>\r\nBcc: x@y.org", id="crlf-injection-named"),
    pytest.param("a@exam\rple.org", id="cr-in-domain"),
    pytest.param("a\x00@example.org", id="nul"),
    pytest.param("a@localhost", id="single-label-domain"),
    pytest.param("a@example.123", id="numeric-tld"),
    pytest.param("a@127.0.0.1", id="ip-address"),
    pytest.param("a@[127.0.0.1]", id="address-literal"),
    pytest.param("l" * 65 + "@example.org", id="local-part-too-long"),
    pytest.param("a@" + "a" * 64 + ".org", id="label-too-long"),
    pytest.param("a@" + ".".join(["abcdefghi"] * 26) + ".org", id="domain-too-long"),
    pytest.param("a@xn--zz.example", id="invalid-punycode"),
    pytest.param("a@-leading.example", id="label-leading-hyphen"),
    pytest.param("a@trailing-.example", id="label-trailing-hyphen"),
    pytest.param("a@ab--cd.example", id="hyphens-in-3-4"),
    pytest.param("a@ex_ample.org", id="underscore-in-domain"),
    pytest.param("a@.example.org", id="empty-label"),
    pytest.param("a@example..org", id="double-dot-domain"),
    pytest.param(".a@example.org", id="leading-dot"),
    pytest.param("a.@example.org", id="trailing-dot"),
    pytest.param("a..b@example.org", id="double-dot-local"),
    pytest.param('"a b"@example.org', id="quoted-local"),
    pytest.param("team: a@x.org, b@y.org;", id="group"),
    pytest.param("team: Ann <a@x.org>, Bob <b@y.org>;", id="group-named"),
    pytest.param("team:;", id="empty-group"),
    pytest.param("a@x.org, b@y.org", id="two-addresses"),
    pytest.param("Ann <a@x.org>, Bob <b@y.org>", id="two-mailboxes"),
    pytest.param("Ann <>", id="empty-angle"),
    pytest.param("Ann <ann>", id="angle-without-at"),
    pytest.param("Ann <a@localhost>", id="angle-single-label"),
    pytest.param("mailto:", id="bare-mailto"),
    pytest.param(".<İ:Z.Z", id="email-parser-crash"),
]


@pytest.mark.parametrize("text", BAD)
def test_parse_mailbox_refuses(text: str) -> None:
    with pytest.raises(AddressError):
        parse_mailbox(text)


@pytest.mark.parametrize("text", BAD)
def test_normalize_address_refuses(text: str) -> None:
    with pytest.raises(AddressError):
        normalize_address(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ann\x80@example.org", id="C1-control"),
        pytest.param("ann\x9b31m@example.org", id="C1-CSI-terminal-escape"),
        pytest.param("ann\u200b@example.org", id="zero-width-space"),
        pytest.param("ann\u202egro.elpmaxe@example.org", id="right-to-left-override"),
        pytest.param("ann\ufeff@example.org", id="byte-order-mark"),
    ],
)
def test_invisible_and_control_characters_are_refused(text: str) -> None:
    """C0 controls are refused; C1 controls and invisible format characters must be too.

    They make an address that prints like another one (ann@example.org) but compares
    different, which defeats the policy's group and domain checks and spoofs the owner.
    """
    with pytest.raises(AddressError):
        normalize_address(text)
    with pytest.raises(AddressError):
        parse_mailbox(f"Ann <{text}>")


def test_address_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an email address"):
        normalize_address("nobody")


def test_error_message_is_one_line() -> None:
    with pytest.raises(AddressError) as caught:
        parse_mailbox("a@example.org\r\nBcc: x@y.org")
    assert "\n" not in str(caught.value) and "\r" not in str(caught.value)


# --- properties

_PIECES = st.sampled_from(
    [
        "a", "Z", "0", ".", "@", "<", ">", '"', "\\", "(", ")", ",", ";", ":", " ", "\t",
        "\r\n", "ü", "ß", "İ", "-", "_", "+", "xn--", "example.org", "Bücher", "=?utf-8?q?",
        "?=", "mailto:", "..", "[", "]", "*",
    ]
)  # fmt: skip
ADDRESS_LIKE = st.lists(_PIECES, max_size=20).map("".join)
PLAUSIBLE = st.builds(
    "{}{}@{}.{}".format,
    st.sampled_from(["", "Ann <", '"Smith, Ann" <', "mailto:"]),
    st.from_regex(r"[A-Za-z0-9+_-]{1,10}(\.[A-Za-z0-9+_-]{1,10}){0,2}", fullmatch=True),
    st.from_regex(r"([A-Za-z0-9]{1,10}|B[üÜ]cher)(-[a-z0-9]{1,5})?", fullmatch=True),
    st.sampled_from(["org", "example", "no", "Com"]),
).map(lambda text: text + ">" if "<" in text else text)
ANY_TEXT = st.one_of(st.text(), ADDRESS_LIKE, PLAUSIBLE)


def _check_normal(address: str) -> None:
    assert normalize_address(address) == address  # idempotent
    local, _, domain = address.rpartition("@")
    assert local == local.lower()
    assert domain.isascii() and domain == domain.lower()
    assert address == address.strip()


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
@example(".<İ:Z.Z")
@example("Ann <ann@Bücher.example>")
def test_parse_mailbox_returns_a_normal_address_or_raises_address_error(text: str) -> None:
    try:
        mailbox = parse_mailbox(text)
    except AddressError:
        return
    _check_normal(mailbox.address)
    assert parse_mailbox(str(mailbox)) == mailbox  # normalising twice changes nothing


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
@example("bob@Bücher.example")
def test_normalize_address_returns_a_normal_address_or_raises_address_error(text: str) -> None:
    try:
        address = normalize_address(text)
    except AddressError:
        return
    _check_normal(address)
    assert parse_mailbox(address) == Mailbox(address)


@settings(max_examples=200, deadline=None)
@given(PLAUSIBLE)
def test_plausible_addresses_are_accepted(text: str) -> None:
    mailbox = parse_mailbox(text)
    _check_normal(mailbox.address)


@pytest.mark.parametrize(
    ("box", "pieces"),
    [
        ("bob@example.org", ["bob@example.org"]),
        ("bob@example.org, kari@example.org", ["bob@example.org", "kari@example.org"]),
        (
            "a@example.org;b@example.org\nc@example.org\r\n",
            ["a@example.org", "b@example.org", "c@example.org"],
        ),
        (
            '"Doe, Jo" <jo@example.org>; Bob <bob@example.org>',
            ['"Doe, Jo" <jo@example.org>', "Bob <bob@example.org>"],
        ),
        (
            '"Say \\"hi\\", ok" <x@example.org>,y@example.org',
            ['"Say \\"hi\\", ok" <x@example.org>', "y@example.org"],
        ),
        (" , ;\n ", []),
        ("bob@", ["bob@"]),
    ],
)
def test_a_box_of_addresses_splits_where_mail_programs_split(box: str, pieces: list[str]) -> None:
    assert split_addresses(box) == pieces


@settings(max_examples=200, deadline=None)
@given(
    st.lists(PLAUSIBLE, min_size=1, max_size=5), st.sampled_from([",", ";", "\n", ", ", " ;\r\n"])
)
def test_any_list_of_addresses_splits_back_into_them(addresses: list[str], separator: str) -> None:
    assert [parse_mailbox(p) for p in split_addresses(separator.join(addresses))] == [
        parse_mailbox(a) for a in addresses
    ]
