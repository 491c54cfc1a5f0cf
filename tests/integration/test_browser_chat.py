"""Register, log in, chat with a streamed reply, reload — in real Chromium against the app."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ASSISTANT_DONE = '[data-role="assistant"][data-status="complete"]'


def goto(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#hydrated", state="attached", timeout=30_000)


def register(page: Page, app_url: str, email: str, password: str = "password-123") -> None:
    goto(page, f"{app_url}/register")
    page.fill("#register-email", email)
    page.fill("#register-password", password)
    page.click("#register-submit")
    expect(page).to_have_url(re.compile(r"/chat/?$"), timeout=20_000)
    page.wait_for_selector("#hydrated", state="attached")


def test_register_login_stream_reload(page: Page, app_url: str, shots: Path) -> None:
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    register(page, app_url, email)
    expect(page.locator("#offline-banner")).to_contain_text("Offline demo model")
    # The session cookie is HttpOnly: the page's scripts cannot read it.
    assert any(c["name"] == "elx_session" and c["httpOnly"] for c in page.context.cookies())
    assert "elx_session" not in page.evaluate("document.cookie")

    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login/?$"), timeout=20_000)
    page.wait_for_selector("#hydrated", state="attached")
    page.fill("#login-email", email)
    page.fill("#login-password", "password-123")
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/chat/?$"), timeout=20_000)
    page.wait_for_selector("#hydrated", state="attached")

    page.fill("#chat-input", "Hello from Playwright")
    page.click("#chat-send")
    expect(page.locator('[data-role="user"]')).to_have_text("Hello from Playwright")
    expect(page.locator("#chat-input")).to_have_value("")  # taken: the box is cleared
    # The reply arrives token by token: we see a partial reply before the complete one.
    partial = page.locator("#streaming-reply")
    expect(partial).to_contain_text("offline", timeout=20_000)
    partial_text = partial.inner_text()
    reply = page.locator(ASSISTANT_DONE)
    expect(reply).to_contain_text("GEMINI_API_KEY", timeout=30_000)
    final_text = reply.inner_text()
    assert len(partial_text) < len(final_text)
    assert "offline demo model" in final_text
    page.screenshot(path=str(shots / "chat.png"), full_page=True)

    goto(page, f"{app_url}/chat")
    expect(page.locator('[data-role="user"]')).to_have_text("Hello from Playwright")
    expect(page.locator(ASSISTANT_DONE)).to_contain_text("offline demo model")


def test_bad_input_shows_clear_messages(page: Page, app_url: str, shots: Path) -> None:
    email = f"b{uuid.uuid4().hex[:8]}@example.com"
    register(page, app_url, email)
    page.fill("#chat-input", "x" * 100_000)
    page.click("#chat-send")
    expect(page.locator("#chat-error")).to_contain_text("too long", timeout=20_000)
    expect(page.locator('[data-role="user"]')).to_have_count(0)
    # Refused, not lost: the text stays in the box to be shortened.
    assert page.eval_on_selector("#chat-input", "e => e.value.length") == 100_000

    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login/?$"), timeout=20_000)
    page.wait_for_selector("#hydrated", state="attached")
    page.fill("#login-email", email)
    page.fill("#login-password", "wrong-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("Wrong email or password")
    expect(page.locator("#login-email")).to_have_value(email)  # kept, to fix the password
    expect(page.locator("#login-password")).to_have_value("")
    page.fill("#login-email", "nobody-" + email)
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("Wrong email or password")

    goto(page, f"{app_url}/register")
    page.fill("#register-email", email)
    page.fill("#register-password", "password-123")
    page.click("#register-submit")
    expect(page.locator("#register-error")).to_contain_text("already exists")
    page.screenshot(path=str(shots / "register-duplicate.png"))


def test_logged_out_pages_redirect_and_users_are_isolated(page: Page, app_url: str) -> None:
    goto(page, f"{app_url}/chat")
    expect(page).to_have_url(re.compile(r"/login/?$"), timeout=20_000)

    register(page, app_url, f"c{uuid.uuid4().hex[:8]}@example.com")
    page.fill("#chat-input", "private note of user C")
    page.click("#chat-send")
    expect(page.locator(ASSISTANT_DONE)).to_have_count(1, timeout=30_000)
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login/?$"), timeout=20_000)

    register(page, app_url, f"d{uuid.uuid4().hex[:8]}@example.com")
    expect(page.locator("body")).not_to_contain_text("private note of user C")
    expect(page.locator(".conversation-item")).to_have_count(0)


def test_stop_regenerate_siblings_and_xss(page: Page, app_url: str, shots: Path) -> None:
    register(page, app_url, f"e{uuid.uuid4().hex[:8]}@example.com")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Raw HTML stays text: no <img> element, no dialog.
    payload = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
    page.fill("#chat-input", payload)
    page.click("#chat-send")
    expect(page.locator(ASSISTANT_DONE)).to_have_count(1, timeout=30_000)
    expect(page.locator('[data-role="user"]')).to_have_text(payload)
    assert page.locator(".chat-message img").count() == 0
    assert page.locator(".chat-message script").count() == 0

    # Stop a stream midway: the partial answer is kept and marked stopped.
    page.fill("#chat-input", "tell me a long story")
    page.click("#chat-send")
    expect(page.locator("#streaming-reply")).to_contain_text("offline", timeout=20_000)
    page.click("#chat-stop")
    stopped = page.locator('[data-role="assistant"][data-status="stopped"]')
    expect(stopped).to_have_count(1, timeout=20_000)
    assert "GEMINI_API_KEY" not in stopped.inner_text()

    # Regenerate: a second version; switch back to the first.
    page.locator(".msg-regenerate").last.click()
    expect(page.locator(".sibling-position").last).to_have_text("2 / 2", timeout=30_000)
    expect(page.locator(ASSISTANT_DONE).last).to_contain_text("GEMINI_API_KEY", timeout=30_000)
    page.locator(".sibling-prev").last.click()
    expect(page.locator(".sibling-position").last).to_have_text("1 / 2")
    expect(page.locator('[data-role="assistant"]').last).to_have_attribute("data-status", "stopped")
    page.screenshot(path=str(shots / "chat-siblings.png"), full_page=True)

    # Edit and resend: the box is wide enough to edit in (it was ~190 px for a long message).
    page.locator(".msg-edit").first.click()
    box = page.locator("#edit-input").bounding_box()
    assert box is not None and box["width"] >= 400, box
    page.click("#edit-input")
    page.keyboard.press("Escape")
    assert dialogs == []


def test_agent_routes_runs_the_pipeline_live_and_reports(
    page: Page, app_url: str, shots: Path, tmp_path: Path
) -> None:
    register(page, app_url, f"f{uuid.uuid4().hex[:8]}@example.com")
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    return eval(f'{a}+{b}')\n")
    goto(page, f"{app_url}/workspace")
    page.set_input_files("#workspace-upload input[type=file]", str(source))
    page.click("#workspace-upload-submit")
    expect(page.locator(".workspace-file")).to_contain_text("calc.py", timeout=20_000)

    goto(page, f"{app_url}/chat")
    # Record every step status the live progress table shows, however briefly.
    page.evaluate(
        """() => {
        window.__seen = new Set();
        new MutationObserver(() => {
          document.querySelectorAll('#run-progress .progress-step').forEach(
            r => window.__seen.add(r.dataset.step + ':' + r.dataset.status));
        }).observe(document.body, {subtree: true, childList: true, attributes: true});
    }"""
    )
    page.fill("#chat-input", "analyze my code quality")
    page.click("#chat-send")
    # The routing decision and the steps show up while the run goes on.
    expect(page.locator(".route-decision").first).to_contain_text("code_analysis", timeout=20_000)
    reply = page.locator(ASSISTANT_DONE)
    expect(reply).to_contain_text("code_analysis — succeeded", timeout=60_000)
    expect(reply.locator("table")).to_contain_text("list_sources")
    seen = set(page.evaluate("() => [...window.__seen]"))
    assert {"analyse:running", "analyse:succeeded"} <= seen, seen
    page.screenshot(path=str(shots / "agent-report.png"), full_page=True)

    page.locator(".run-link").first.click()
    page.wait_for_selector("#hydrated", state="attached")
    expect(page.locator("#run-summary")).to_contain_text("LLM call", timeout=20_000)
    expect(page.locator(".step-card")).to_have_count(3)
    expect(page.locator('.step-card[data-step="list_sources"]')).to_contain_text("calc.py")
    page.screenshot(path=str(shots / "run-detail.png"), full_page=True)
