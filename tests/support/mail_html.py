"""Mail HTML as clients need it: tables, inline styles, no scripts, nothing fetched, 600 px."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    handle_startendtag = handle_starttag


_WIDTH = re.compile(r"(?:^|;)\s*(?:max-|min-)?width\s*:\s*([^;]+)", re.IGNORECASE)
MAX_WIDTH = 600


def _pixels(value: str) -> int | None:
    """A width in pixels, None for a relative one (100%, auto); fails on anything else."""
    value = value.strip().lower()
    if value.endswith("%") or value in ("auto", "inherit", "initial"):
        return None
    match = re.fullmatch(r"(\d+)(?:px)?", value)
    assert match, f"a width we cannot judge: {value!r}"
    return int(match[1])


def assert_mail_safe_html(html: str) -> None:
    parser = _Html()
    parser.feed(html)
    parser.close()
    tags = [tag for tag, _ in parser.elements]
    assert "table" in tags, "layout should be tables"
    for forbidden in ("style", "script", "link", "iframe", "object", "embed", "form", "base"):
        assert forbidden not in tags, forbidden
    assert "<style" not in html.lower() and "<script" not in html.lower()
    widest = 0
    for tag, attrs in parser.elements:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "class" not in attrs, f"a class left after inlining: {tag} {attrs}"
        style = attrs.get("style", "")
        assert "url(" not in style.lower() and "@import" not in style.lower(), style
        if tag == "img":
            source = attrs.get("src", "").strip().lower()
            assert not source.startswith(("http:", "https:", "//")), source
        for name in ("href", "src"):
            assert not attrs.get(name, "").strip().lower().startswith("javascript:"), attrs
        widths = []
        if "width" in attrs:
            widths.append(_pixels(attrs["width"]))
        widths += [_pixels(value) for value in _WIDTH.findall(style)]
        for width in widths:
            if width is not None:
                assert width <= MAX_WIDTH, f"{tag} is {width} px wide: {attrs}"
                if tag == "table":
                    widest = max(widest, width)
    assert widest == MAX_WIDTH, "the card should be a 600 px table"
