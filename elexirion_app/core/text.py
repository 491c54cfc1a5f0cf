"""Text from users and models made safe to show as one line: titles, names.

Control characters (C0, C1, DEL) and the Unicode bidi controls (embeddings, overrides,
isolates, marks) are removed: an override can make ``evil‮txt.exe`` read as ``evilexe.txt``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_BIDI_ONLY = re.compile(f"[{_BIDI}]")
_SPACES = re.compile(r"\s+")


def strip_unsafe(text: str) -> str:
    """``text`` without control characters or bidi controls (newlines and tabs included)."""
    return _UNSAFE.sub("", text)


def clean_title(value: Any, max_chars: int) -> str:
    """One clean line of at most ``max_chars`` characters ("" for non-text)."""
    if not isinstance(value, str):
        return ""
    text = _BIDI_ONLY.sub("", unicodedata.normalize("NFC", value))
    text = _SPACES.sub(" ", _UNSAFE.sub(" ", text)).strip()
    return text[:max_chars].rstrip()
