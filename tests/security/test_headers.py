"""Security headers on pages, static files and the upload route (issue 7 item 6)."""

from __future__ import annotations

import httpx

from tests.security.conftest import Served


def test_every_response_has_the_security_headers(served: Served) -> None:
    responses = [
        httpx.get(f"{served.url}/", follow_redirects=True),
        httpx.get(f"{served.url}/chat/", follow_redirects=True),
        httpx.get(f"{served.url}/login/", follow_redirects=True),
        httpx.post(f"{served.url}/_upload"),  # refused, still with headers
        httpx.post(f"{served.url}/auth/login", data={}),
    ]
    for resp in responses:
        h = resp.headers
        csp = h.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, (resp.url, csp)
        assert "object-src 'none'" in csp and "default-src 'self'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
        assert h.get("x-frame-options") == "DENY"
        assert h.get("x-content-type-options") == "nosniff"
        assert h.get("referrer-policy")


def test_pages_inline_scripts_are_allowed_by_hash(served: Served) -> None:
    """The built pages' inline scripts are in script-src: the strict CSP does not break them."""
    from elexirion_app.api.security_headers import inline_script_hashes

    page = httpx.get(f"{served.url}/login/", follow_redirects=True)
    csp = page.headers["content-security-policy"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "page.html"
        html.write_bytes(page.content)
        for digest in inline_script_hashes([html]):
            assert digest in csp
