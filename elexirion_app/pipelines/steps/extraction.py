"""``claude_extract`` post-processing and output formats (plain text processing, no model)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_FENCE = re.compile(r"```([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_URL = re.compile(r"https?://[^\s)\]>\"']+")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(.+?)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s*(.+?)\s*#*\s*$")
_RECOMMEND = re.compile(
    r"\b(recommend\w*|should|suggest\w*|consider|prefer|avoid|best practice)\b", re.IGNORECASE
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

POST_PROCESSORS = (
    "extract_code_blocks",
    "extract_recommendations",
    "extract_links",
    "extract_key_points",
    "format_markdown",
    "generate_summary",
)


def extract_code_blocks(text: str) -> list[dict[str, str]]:
    return [
        {"language": lang or "text", "code": code.rstrip("\n")}
        for lang, code in _FENCE.findall(text)
    ]


def _without_code(text: str) -> str:
    return _FENCE.sub("", text)


def extract_recommendations(text: str) -> list[str]:
    """Bullets under a "Recommendations"-like heading, plus lines that recommend something."""
    found: list[str] = []
    in_section = False
    for line in _without_code(text).splitlines():
        heading = _HEADING.match(line)
        if heading:
            in_section = bool(
                re.search(r"recommend|suggest|next step|action", heading.group(2), re.I)
            )
            continue
        bullet = _BULLET.match(line)
        stripped = line.strip()
        if in_section and bullet:
            found.append(bullet.group(1))
        elif stripped and _RECOMMEND.search(stripped):
            found.append(bullet.group(1) if bullet else stripped)
    return list(dict.fromkeys(found))


def extract_links(text: str) -> list[dict[str, str]]:
    links: list[dict[str, str]] = []
    seen: set[str] = set()
    for label, url in _MD_LINK.findall(text):
        seen.add(url)
        links.append({"text": label, "url": url})
    for url in _URL.findall(text):
        url = url.rstrip(".,;:")
        if url not in seen:
            seen.add(url)
            links.append({"text": url, "url": url})
    return links


def sentences(text: str) -> list[str]:
    flat = " ".join(
        line.strip()
        for line in _without_code(text).splitlines()
        if line.strip() and not _HEADING.match(line)
    )
    return [s.strip() for s in _SENTENCE.split(flat) if s.strip()]


def extract_key_points(text: str, limit: int = 10) -> list[str]:
    bullets = [
        m.group(1) for line in _without_code(text).splitlines() if (m := _BULLET.match(line))
    ]
    points = bullets or sentences(text)
    return points[:limit]


def format_markdown(text: str) -> str:
    """Normalise markdown: blank lines around headings, no trailing spaces, ≤1 empty line."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        heading = _HEADING.match(line)
        if heading:
            if lines and lines[-1] != "":
                lines.append("")
            lines.append(f"{heading.group(1)} {heading.group(2)}")
            lines.append("")
            continue
        if line == "" and lines and lines[-1] == "":
            continue
        lines.append(line)
    while lines and lines[-1] == "":
        lines.pop()
    while lines and lines[0] == "":
        lines.pop(0)
    return "\n".join(lines) + "\n" if lines else ""


def generate_summary(text: str, max_length: int = 500) -> str:
    out = ""
    for sentence in sentences(text):
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > max_length:
            break
        out = candidate
    if not out:
        flat = " ".join(text.split())
        if len(flat) <= max_length:
            return flat
        cut = flat[: max(max_length - 3, 0)].rsplit(" ", 1)[0]
        return cut + "..."
    return out


def apply_extraction(text: str, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run the configured post-processing and format; returns (new text, extracted data)."""
    max_len = int(config.get("max_summary_length") or 500)
    steps: Sequence[str] = config.get("post_processing") or []
    extracted: dict[str, Any] = {}
    body = text
    for name in steps:
        if name == "extract_code_blocks":
            extracted["code_blocks"] = extract_code_blocks(text)
        elif name == "extract_recommendations":
            extracted["recommendations"] = extract_recommendations(text)
        elif name == "extract_links":
            extracted["links"] = extract_links(text)
        elif name == "extract_key_points":
            extracted["key_points"] = extract_key_points(text)
        elif name == "format_markdown":
            body = format_markdown(body)
        elif name == "generate_summary":
            extracted["summary"] = generate_summary(text, max_len)
    fmt = str(config.get("format") or "text")
    if fmt == "json":
        try:
            body = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            body = json.dumps({"content": text, **extracted}, indent=2, ensure_ascii=False)
    elif fmt == "structured":
        sections = [m.group(2) for line in text.splitlines() if (m := _HEADING.match(line))]
        body = json.dumps(
            {"content": text, "sections": sections, **extracted}, indent=2, ensure_ascii=False
        )
    elif fmt == "summary":
        body = extracted.get("summary") or generate_summary(text, max_len)
    elif fmt == "markdown":
        body = format_markdown(body)
    return body, extracted
