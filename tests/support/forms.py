"""The forms of a page as a browser would submit them: action, method and fields.

For the console's authorization matrix: every form an owner's page offers is replayed
with other credentials, field for field as the page filled it in (hidden fields,
text values, the selected or first option, checked boxes, the first radio of a
group, and the name/value of the form's first submit button).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    has_file: bool = False


class _Forms(HTMLParser):
    def __init__(self, page_path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_value: str | None = None
        self._option_value: str | None = None
        self._option_text = ""
        self._radios: set[str] = set()
        self._textarea: str | None = None
        self._submitted = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(a.get("action") or self.page_path, a.get("method", "get").lower())
            self._radios = set()
            self._submitted = False
            return
        form = self._form
        if form is None:
            return
        name = a.get("name", "")
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "file":
                form.has_file = True
            elif kind in ("checkbox",):
                if "checked" in a and name:
                    form.fields.append((name, a.get("value", "on")))
            elif kind == "radio" and name:
                present = any(n == name for n, _ in form.fields)
                if "checked" in a and name not in self._radios:
                    form.fields = [(n, v) for n, v in form.fields if n != name]
                    form.fields.append((name, a.get("value", "on")))
                    self._radios.add(name)
                elif not present:
                    form.fields.append((name, a.get("value", "on")))
            elif kind in ("submit", "image"):
                if name and not self._submitted:
                    form.fields.append((name, a.get("value", "")))
                self._submitted = True
            elif kind not in ("button", "reset") and name:
                form.fields.append((name, a.get("value", "")))
        elif tag == "button":
            kind = a.get("type", "submit").lower()
            if kind == "submit" and not self._submitted:
                if name:
                    form.fields.append((name, a.get("value", "")))
                self._submitted = True
        elif tag == "select" and name:
            self._select, self._select_value = name, None
        elif tag == "option" and self._select is not None:
            self._option_value = a.get("value")
            self._option_text = ""
            if "selected" in a:
                self._select_value = self._option_value if self._option_value is not None else ""
        elif tag == "textarea" and name:
            self._textarea = name
            form.fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._form is None:
            return
        if self._textarea is not None:
            name, value = self._form.fields[-1]
            self._form.fields[-1] = (name, value + data)
        elif self._select is not None:
            self._option_text += data

    def handle_endtag(self, tag: str) -> None:
        form = self._form
        if tag == "form" and form is not None:
            self.forms.append(form)
            self._form = None
        elif tag == "option" and self._select is not None:
            value = self._option_value if self._option_value is not None else self._option_text
            if self._select_value is None:
                self._select_value = value.strip()
        elif tag == "select" and self._select is not None and form is not None:
            form.fields.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_of(html: str, page_path: str) -> list[Form]:
    parser = _Forms(page_path)
    parser.feed(html)
    parser.close()
    return parser.forms
