"""OIDC account rules (services/accounts/oidc): linking by verified email only, existing links,
signup on/off, disabled accounts, several issuers; the pending-login store; the settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from elexirion_app.config import oidc_providers
from elexirion_app.core.errors import ConfigError
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, AuditEvent, OidcIdentity, OidcPending, utcnow
from elexirion_app.services.accounts import auth, oidc

CORP = "https://corp.example.com"
OKTA = "https://okta.example.com"


def ident(sub: str = "s-1", email: str = "ann@example.com", **kw: object) -> oidc.Identity:
    fields: dict[str, object] = {
        "provider": "corp",
        "issuer": CORP,
        "subject": sub,
        "email": email,
        "email_verified": True,
        "name": "Ann",
    }
    fields.update(kw)
    return oidc.Identity(**fields)  # type: ignore[arg-type]


def resolve(identity: oidc.Identity, signup: bool = True) -> auth.UserInfo:
    with session_scope() as s:
        return oidc.resolve_user(s, identity, signup=signup, address="10.0.0.1")


def links() -> list[tuple[int, str, str]]:
    with session_scope() as s:
        rows = s.exec(select(OidcIdentity)).all()
        return sorted((r.user_id, r.issuer, r.subject) for r in rows)


def audit_actions() -> list[str]:
    with session_scope() as s:
        return [e.action for e in s.exec(select(AuditEvent)).all()]


def password_user(email: str, active: bool = True, proven: bool = True) -> int:
    """A password account; ``proven``: its email vouched for (as ``users create`` does), so an
    OIDC login may link into it by email. A self-registered one is not (``proven=False``)."""
    with session_scope() as s:
        user = auth.register(s, email, "password-123")
        row = s.get(AppUser, user.id)
        assert row is not None
        row.is_active = active
        row.email_verified_at = utcnow() if proven else None
        s.add(row)
    return user.id


def verified_at(user_id: int) -> object:
    with session_scope() as s:
        row = s.get(AppUser, user_id)
        assert row is not None
        return row.email_verified_at


def test_a_self_registered_password_account_is_not_linked_by_email(db_url: str) -> None:
    """Anyone can register someone else's address with a password: linking the provider's
    verified identity into that account would give the squatter the real owner's sign-ins."""
    uid = password_user("ann@example.com", proven=False)
    with pytest.raises(oidc.OidcFailure) as err:
        resolve(ident(email="ann@example.com"))
    assert err.value.code == "oidc_link_required" and err.value.status == 409
    assert "connect this provider in Settings" in oidc.MESSAGES[err.value.code]
    assert links() == [] and verified_at(uid) is None
    with session_scope() as s:  # and no second account took the address
        assert len(s.exec(select(AppUser)).all()) == 1


def test_a_passwordless_account_links_by_email_and_counts_as_proven(db_url: str) -> None:
    with session_scope() as s:
        row = AppUser(email="ann@example.com", password_hash="")
        s.add(row)
        s.flush()
        uid = row.id
    assert uid is not None
    assert resolve(ident(email="ann@example.com")).id == uid
    assert verified_at(uid) is not None


def test_an_oidc_signup_is_proven_and_other_issuers_then_link(db_url: str) -> None:
    first = resolve(ident(sub="corp-1", email="zed@example.com"))
    assert verified_at(first.id) is not None
    other = resolve(ident(sub="okta-1", issuer=OKTA, provider="okta", email="zed@example.com"))
    assert other.id == first.id


def test_verified_email_of_an_existing_account_links_it(db_url: str) -> None:
    uid = password_user("Ann@Example.com")
    user = resolve(ident(email="ANN@example.com"))
    assert user.id == uid
    assert links() == [(uid, CORP, "s-1")]
    assert audit_actions() == ["oidc_link"]
    # The password still works: linking changes nothing else.
    with session_scope() as s:
        assert auth.authenticate(s, "ann@example.com", "password-123").id == uid


def test_unverified_email_is_refused_and_links_nothing(db_url: str) -> None:
    password_user("ann@example.com")
    for verified in (False, "false", None, 1):
        with pytest.raises(oidc.OidcFailure) as err:
            resolve(ident(email_verified=oidc._verified(verified)))
        assert err.value.code == "oidc_unverified" and err.value.outcome == "refused"
    assert links() == []


def test_existing_link_wins_over_the_email(db_url: str) -> None:
    ann = password_user("ann@example.com")
    resolve(ident())
    password_user("new-address@example.com")
    # Same (issuer, sub), the provider now says another email: still Ann's account.
    assert resolve(ident(email="new-address@example.com")).id == ann
    assert links() == [(ann, CORP, "s-1")]


def test_signup_creates_a_member_without_a_password(db_url: str) -> None:
    password_user("admin@example.com")  # the first account (admin)
    user = resolve(ident(email="zoe@example.com", sub="z", name="Zoe"))
    assert not user.is_admin and user.email == "zoe@example.com"
    with session_scope() as s:
        row = s.get(AppUser, user.id)
        assert row is not None and row.password_hash == "" and row.display_name == "Zoe"
        with pytest.raises(Exception):  # noqa: B017 - any refusal: no password login at all
            auth.authenticate(s, "zoe@example.com", "")
    assert resolve(ident(email="zoe@example.com", sub="z")).id == user.id  # then the link


def test_signup_off_refuses_unknown_emails_but_links_known_ones(db_url: str) -> None:
    with pytest.raises(oidc.OidcFailure) as err:
        resolve(ident(email="zoe@example.com"), signup=False)
    assert err.value.code == "oidc_no_account"
    with session_scope() as s:
        assert s.exec(select(AppUser)).all() == []
    uid = password_user("zoe@example.com")
    assert resolve(ident(email="zoe@example.com"), signup=False).id == uid


def test_disabled_accounts_are_refused_by_link_and_by_email(db_url: str) -> None:
    off = password_user("off@example.com", active=False)
    with pytest.raises(oidc.OidcFailure) as err:
        resolve(ident(email="off@example.com"))
    assert err.value.code == "disabled"
    assert links() == []  # never linked
    on = password_user("on@example.com")
    resolve(ident(sub="on", email="on@example.com"))
    with session_scope() as s:
        row = s.get(AppUser, on)
        assert row is not None
        row.is_active = False
        s.add(row)
    with pytest.raises(oidc.OidcFailure) as err:
        resolve(ident(sub="on", email="on@example.com"))
    assert err.value.code == "disabled" and off != on


def test_same_email_from_another_issuer_links_the_same_account(db_url: str) -> None:
    uid = password_user("ann@example.com")
    resolve(ident(sub="corp-7"))
    other = resolve(ident(sub="okta-9", issuer=OKTA, provider="okta"))
    assert other.id == uid
    assert links() == [(uid, CORP, "corp-7"), (uid, OKTA, "okta-9")]
    # Same sub at another issuer is another identity (sub is unique per issuer only).
    password_user("bob@example.com")
    bob = resolve(ident(sub="corp-7", issuer=OKTA, provider="okta", email="bob@example.com"))
    assert bob.id != uid


def test_pending_login_is_single_use_and_bound_to_key_state_and_provider(db_url: str) -> None:
    pending = oidc.Pending("corp", "state-1", "nonce-1", "verifier-1", "http://x/cb")
    with session_scope() as s:
        oidc.save_pending(s, "key-1", pending)
        oidc.save_pending(s, "key-2", pending)
        oidc.save_pending(s, "key-3", pending)
    with session_scope() as s:
        assert oidc.take_pending(s, "key-1", "corp", "state-1") == pending
    for key, provider, state in [
        ("key-1", "corp", "state-1"),  # used
        ("key-2", "corp", "state-2"),  # another browser's state
        ("key-3", "okta", "state-1"),  # another provider
        (None, "corp", "state-1"),  # no cookie
        ("key-9", "corp", None),  # no state
    ]:
        with pytest.raises(oidc.OidcFailure) as err, session_scope() as s:
            oidc.take_pending(s, key, provider, state)
        assert err.value.code == "oidc_state"
    with session_scope() as s:  # the refused ones were consumed too
        assert s.exec(select(OidcPending)).all() == []
    with session_scope() as s:
        oidc.save_pending(s, "old", pending)
        row = s.exec(select(OidcPending)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    with pytest.raises(oidc.OidcFailure), session_scope() as s:
        oidc.take_pending(s, "old", "corp", "state-1")
    with session_scope() as s:
        assert s.exec(select(OidcPending)).all() == []


def test_settings_read_several_providers() -> None:
    env = {
        "ELEXIRION_OIDC_PROVIDERS": "corp, Okta",
        "ELEXIRION_OIDC_CORP_ISSUER": "https://login.corp.example/",
        "ELEXIRION_OIDC_CORP_CLIENT_ID": "cid",
        "ELEXIRION_OIDC_CORP_CLIENT_SECRET": "sec",
        "ELEXIRION_OIDC_CORP_DISPLAY_NAME": "Corp SSO",
        "ELEXIRION_OIDC_OKTA_ISSUER": "http://127.0.0.1:9000",
        "ELEXIRION_OIDC_OKTA_CLIENT_ID": "o",
        "ELEXIRION_OIDC_OKTA_CLIENT_SECRET": "p",
        "ELEXIRION_OIDC_OKTA_ALGORITHMS": "ES256",
    }
    corp, okta = oidc_providers(env)
    assert corp.issuer == "https://login.corp.example" and corp.display_name == "Corp SSO"
    assert corp.discovery_url == "https://login.corp.example/.well-known/openid-configuration"
    assert corp.algorithms == ("RS256", "ES256")
    assert okta.name == "okta" and okta.display_name == "Okta" and okta.algorithms == ("ES256",)
    assert oidc_providers({}) == ()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"ELEXIRION_OIDC_CORP_ISSUER": ""}, "ELEXIRION_OIDC_CORP_ISSUER is required"),
        ({"ELEXIRION_OIDC_CORP_CLIENT_SECRET": " "}, "CLIENT_SECRET is required"),
        ({"ELEXIRION_OIDC_CORP_ISSUER": "http://idp.example.com"}, "must be an https:// URL"),
        ({"ELEXIRION_OIDC_CORP_ISSUER": "https://idp.example.com?x=1"}, "without query"),
        ({"ELEXIRION_OIDC_CORP_ALGORITHMS": "RS256,HS256"}, "HS256 not accepted"),
        ({"ELEXIRION_OIDC_CORP_ALGORITHMS": "none"}, "none not accepted"),
        ({"ELEXIRION_OIDC_PROVIDERS": "corp,corp"}, "twice"),
        ({"ELEXIRION_OIDC_PROVIDERS": "../x"}, "is not a provider name"),
    ],
)
def test_bad_provider_settings_say_what_to_fix(change: dict[str, str], needle: str) -> None:
    env = {
        "ELEXIRION_OIDC_PROVIDERS": "corp",
        "ELEXIRION_OIDC_CORP_ISSUER": "https://idp.example.com",
        "ELEXIRION_OIDC_CORP_CLIENT_ID": "cid",
        "ELEXIRION_OIDC_CORP_CLIENT_SECRET": "sec",
        **change,
    }
    with pytest.raises(ConfigError) as err:
        oidc_providers(env)
    assert needle in err.value.message


def test_signup_setting_is_a_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    from elexirion_app import config

    for text, expected in [("", True), ("false", False), ("0", False), ("TRUE", True)]:
        monkeypatch.setenv("ELEXIRION_OIDC_SIGNUP", text)
        config.get_settings.cache_clear()
        assert config.get_settings().oidc_signup is expected
    monkeypatch.setenv("ELEXIRION_OIDC_SIGNUP", "maybe")
    config.get_settings.cache_clear()
    with pytest.raises(ConfigError, match="ELEXIRION_OIDC_SIGNUP"):
        config.get_settings()
    config.get_settings.cache_clear()
