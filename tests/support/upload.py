"""A browser's file upload: a ``multipart/form-data`` body, built as browsers build it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence


def multipart(
    fields: Sequence[tuple[str, str]],
    files: Sequence[tuple[str, str, bytes]] = (),
    *,
    files_first: bool = False,
) -> tuple[bytes, str]:
    """(body, Content-Type) for ``fields`` then ``files`` (name, file name, bytes), in order
    (``files_first``: the other way round, as no browser sends a form built as ours)."""
    boundary = f"----calshare{secrets.token_hex(12)}"
    parts: list[bytes] = []
    texts: list[bytes] = []
    for name, value in fields:
        texts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, filename, data in files:
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: text/calendar\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    parts = [*parts, *texts] if files_first else [*texts, *parts]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
