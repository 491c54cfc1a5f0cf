"""/admin and /settings in Chromium: an admin disables a member (whose open page is logged out
on its next event), re-enables them, sets their limit and filters the audit log; the member
creates an API key (shown once, then only its prefix) and revokes it."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.test_browser_chat import goto, register

pytestmark = pytest.mark.browser
PASSWORD = "password-123"


def _ensure_admin(db: Path, email: str) -> None:
    """The first account registered is admin; other browser tests may have registered first
    in this session: then this account is made admin directly in the database."""
    with sqlite3.connect(db) as conn:
        conn.execute("update app_user set is_admin = 1 where email = ?", (email,))


def _row(page: Page, email: str) -> str:
    return f'#admin-users tr[data-user-email="{email}"]'


def login(page: Page, app_url: str, email: str) -> None:
    goto(page, f"{app_url}/login")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/chat/?$"), timeout=20_000)
    page.wait_for_selector("#hydrated", state="attached")


def test_admin_manages_a_member_who_manages_their_keys(
    browser: Browser, app_url: str, shots: Path, app_data: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    boss_email, member_email = f"admin{tag}@example.com", f"member{tag}@example.com"
    boss_ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    member_ctx = browser.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    try:
        boss, member = boss_ctx.new_page(), member_ctx.new_page()
        register(boss, app_url, boss_email)
        register(member, app_url, member_email)
        _ensure_admin(app_data / "app.db", boss_email)

        # A member sees no admin link, and /admin shows only the refusal.
        expect(member.locator("#nav-settings")).to_be_visible()
        expect(member.locator("#nav-admin")).to_have_count(0)
        goto(member, f"{app_url}/admin")
        expect(member.locator("#admin-error")).to_contain_text("You do not have access")
        expect(member.locator("#admin-users")).to_have_count(0)
        expect(member.locator("body")).not_to_contain_text(boss_email)

        goto(boss, f"{app_url}/admin")
        expect(boss.locator("#nav-admin")).to_be_visible()
        row = boss.locator(_row(boss, member_email))
        expect(row).to_contain_text("member")
        expect(boss.locator(_row(boss, boss_email))).to_contain_text("you")

        # Disable the member while their settings page is open: their next event logs out.
        goto(member, f"{app_url}/settings")
        expect(member.locator("#current-user")).to_have_text(member_email)
        row.locator(".user-disable").click()
        boss.locator(".user-disable-confirm").click()
        expect(row.locator(".user-status")).to_contain_text("disabled")
        member.fill("#key-name", "after disable")
        member.click("#key-create")
        expect(member).to_have_url(re.compile(r"/login/?$"), timeout=20_000)
        member.wait_for_selector("#hydrated", state="attached")
        goto(member, f"{app_url}/settings")  # a reload: still out
        expect(member).to_have_url(re.compile(r"/login/?$"), timeout=20_000)

        # Re-enable: the member logs in again (the old session stays revoked).
        row.locator(".user-enable").click()
        expect(row.locator(".user-status")).to_contain_text("active")
        login(member, app_url, member_email)

        # Limits: a bad rule is refused with a clear message, a good one saved.
        chat = row.locator('input[name="chat_limit"]')
        expect(chat).to_have_attribute("placeholder", re.compile(r"/minute"))
        chat.fill("lots please")
        row.locator(".limits-save").click()
        expect(boss.locator("#admin-error")).to_contain_text("not a rate limit")
        chat.fill("5/minute")
        row.locator(".limits-save").click()
        expect(boss.locator("#admin-message")).to_contain_text(member_email)
        expect(boss.locator("#audit-log")).to_contain_text("chat_limit: default → 5/minute")

        # The audit log filtered by action shows only logins, the member's among them.
        boss.locator("#audit-action button").click()
        boss.get_by_role("option", name="login", exact=True).click()
        boss.click("#audit-filter")
        expect(boss.locator("#audit-summary")).to_contain_text("action login")
        rows = boss.locator("#audit-log .audit-row")
        expect(rows.first).to_have_attribute("data-action", "login")
        assert rows.count() >= 1
        assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.action)")) == {"login"}
        expect(boss.locator("#audit-log")).to_contain_text(member_email)
        boss.locator("#audit-action button").click()
        boss.get_by_role("option", name="any action").click()
        boss.click("#audit-filter")
        expect(boss.locator('#audit-log [data-action="user_disabled"]')).to_have_count(1)
        boss.screenshot(path=str(shots / "admin.png"), full_page=True)

        # The member's limits show what the admin set.
        goto(member, f"{app_url}/settings")
        expect(member.locator("#my-limits")).to_contain_text("5/minute")
        expect(member.locator("#my-limits")).to_contain_text("set for you by an admin")

        # An API key: shown once in the dialog, then only its prefix.
        member.fill("#key-name", "CI deploy")
        member.click("#key-create")
        shown = member.locator("#new-key")
        expect(shown).to_have_text(re.compile(r"^elx_[A-Za-z0-9_-]{43}$"))
        plain = shown.inner_text()
        member.click("#new-key-copy")
        assert member.evaluate("navigator.clipboard.readText()") == plain
        member.click("#new-key-done")
        expect(member.locator("#new-key")).to_have_count(0)
        key_row = member.locator('.key-row[data-key-name="CI deploy"]')
        expect(key_row.locator(".key-prefix")).to_have_text(plain[:12] + "…")
        expect(key_row.locator(".key-status")).to_contain_text("live")
        assert plain not in member.content()
        goto(member, f"{app_url}/settings")
        assert plain not in member.content()

        # A second key kept live (a name of the longest kind: one unbroken 100-character word,
        # cut with an ellipsis so that its Revoke button stays on screen), the first revoked.
        laptop = "laptop-" + "x" * 93
        member.fill("#key-name", laptop)
        member.click("#key-create")
        expect(member.locator("#new-key")).to_be_visible()
        member.click("#new-key-done")
        expect(
            member.locator(f'.key-row[data-key-name="{laptop}"] .key-revoke')
        ).to_be_in_viewport()
        key_row.locator(".key-revoke").click()
        member.locator(".key-revoke-confirm").click()
        expect(key_row.locator(".key-status")).to_contain_text("revoked")
        expect(member.locator("#settings-message")).to_contain_text("revoked")
        expect(member.locator(f'.key-row[data-key-name="{laptop}"] .key-status')).to_contain_text(
            "live"
        )
        member.screenshot(path=str(shots / "settings.png"), full_page=True)

        # The admin sees the member's one live key and the key events in the log.
        goto(boss, f"{app_url}/admin")
        expect(boss.locator(_row(boss, member_email)).locator("td").nth(4)).to_have_text("1")
        expect(boss.locator('#audit-log [data-action="key_revoked"]')).to_have_count(1)
    finally:
        boss_ctx.close()
        member_ctx.close()


def test_admin_sets_a_members_budget_and_the_member_sees_it_in_chat(
    browser: Browser, app_url: str, shots: Path, app_data: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    boss_email, member_email = f"budgetboss{tag}@example.com", f"budgeted{tag}@example.com"
    boss_ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    member_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        boss, member = boss_ctx.new_page(), member_ctx.new_page()
        register(boss, app_url, boss_email)
        register(member, app_url, member_email)
        _ensure_admin(app_data / "app.db", boss_email)
        expect(member.locator("#budget-banner")).to_have_count(0)

        goto(boss, f"{app_url}/admin")
        row = boss.locator(f'#admin-budgets tr[data-budget]:has-text("{member_email}")')
        expect(boss.locator('#admin-budgets tr[data-budget="global"]')).to_contain_text(
            "Everyone (global)"
        )
        monthly = row.locator('input[name="monthly_usd"]')
        monthly.fill("lots")
        row.locator(".budget-save").click()
        expect(boss.locator("#admin-error")).to_contain_text("number of dollars")
        monthly.fill("0")  # nothing may be spent on live models
        row.locator('input[name="per_run_usd"]').fill("0.50")
        row.locator(".budget-save").click()
        expect(boss.locator("#admin-message")).to_contain_text("Budget saved")
        expect(row).to_have_attribute("data-level", "exceeded")
        expect(boss.locator("#audit-log")).to_contain_text("budget_changed")
        boss.locator("#admin-budgets").screenshot(path=str(shots / "admin-budgets.png"))

        goto(member, f"{app_url}/chat")
        banner = member.locator("#budget-banner")
        expect(banner).to_contain_text("Budget used up")
        expect(banner).to_contain_text("your monthly cap is $0.00")
        member.screenshot(path=str(shots / "chat-budget.png"))
    finally:
        boss_ctx.close()
        member_ctx.close()
