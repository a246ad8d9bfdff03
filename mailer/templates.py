"""Render mail templates: jinja2 for the words, premailer for the CSS, once per template.

premailer costs milliseconds per call, far more than a jinja2 render, and our
templates' CSS never changes between messages. So the loader inlines
``templates/mail.css`` into each HTML template when jinja2 first loads it, and
jinja2 caches the result: every later message only pays for the render.

Only our own template files pass through premailer, never text a user wrote
(its CSS parser fetches ``@import`` URLs even with ``allow_network=False``);
user text enters later, through jinja2's autoescaping.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from premailer import Premailer

import calshare

log = logging.getLogger(__name__)

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)
STYLESHEET = "mail.css"


def template_dir() -> Path:
    """``calshare/templates`` in an installed wheel, ``templates/`` in a checkout."""
    packaged = Path(calshare.__file__).resolve().parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def inline_css(source: str, css: str) -> str:
    """The template with its classes turned into inline styles and no <style> left.

    Fragments (templates without <html>) come back as fragments, so includes and
    macros can be inlined too.
    """
    fragment = "<html" not in source.lower()
    document = f"<html><head></head><body>{source}</body></html>" if fragment else source
    document = re.sub(r"</head>", f"<style>{css}</style></head>", document, count=1, flags=re.I)
    inlined: str = Premailer(
        document,
        allow_network=False,
        remove_classes=True,
        keep_style_tags=False,
        strip_important=True,
        disable_validation=True,
        # Keep width="600" for Outlook's Word engine; the CSS width is for everyone else.
        disable_basic_attributes=["width", "height"],
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    if fragment:
        match = _BODY.search(inlined)
        inlined = match[1] if match else inlined
    return inlined


class _InliningLoader(jinja2.FileSystemLoader):
    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if template.endswith(".html"):
            css, _, _ = super().get_source(environment, STYLESHEET)
            source = inline_css(source, css)
            log.debug("inlined CSS into template %s", template)
        return source, filename, uptodate


@cache
def environment() -> jinja2.Environment:
    """One environment per process: it caches each template, premailed, after first use."""
    return jinja2.Environment(
        loader=_InliningLoader(str(template_dir())),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
