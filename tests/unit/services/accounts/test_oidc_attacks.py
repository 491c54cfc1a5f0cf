"""Account takeover through OIDC email linking (issue 9 review): an identity provider's verified
email must name the very mailbox of the account it links to — not one that only lower-cases to
it (Unicode case mapping) — and a password account nobody proved the email of is a trap."""

from __future__ import annotations

import pytest
from sqlmodel import select

from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, OidcIdentity, utcnow
from elexirion_app.services.accounts import auth, oidc

CORP = "https://idp.example.com"


def ident(email: str, sub: str = "attacker-sub") -> oidc.Identity:
    return oidc.Identity(
        provider="corp",
        issuer=CORP,
        subject=sub,
        email=email,
        email_verified=True,
        name="Someone",
    )


def resolve(identity: oidc.Identity, signup: bool = True) -> auth.UserInfo:
    with session_scope() as s:
        return oidc.resolve_user(s, identity, signup=signup, address="10.0.0.1")


def password_user(email: str) -> int:
    with session_scope() as s:
        return auth.register(s, email, "password-123").id


def links() -> list[int]:
    with session_scope() as s:
        return [r.user_id for r in s.exec(select(OidcIdentity)).all()]


@pytest.mark.parametrize(
    "lookalike",
    [
        "\u212aate@example.com",  # KELVIN SIGN: .lower() gives ASCII "k"
        "\u212aATE@EXAMPLE.COM",
    ],
)
def test_a_unicode_lookalike_email_does_not_link_to_the_ascii_account(
    db_url: str, lookalike: str
) -> None:
    """The provider verified a mailbox named with a character that only *lower-cases* to the
    victim's address: it must neither sign in to nor link the victim's account."""
    victim = password_user("kate@example.com")
    try:
        user = resolve(ident(lookalike))
    except oidc.OidcFailure:
        user = None
    assert user is None or user.id != victim
    assert victim not in links()


def test_a_lookalike_email_cannot_squat_the_ascii_address_either(db_url: str) -> None:
    """No account yet: a signup with the lookalike must not take 'kate@example.com' from the
    real Kate (she could then never register it)."""
    with pytest.raises(oidc.OidcFailure):
        resolve(ident("\u212aate@example.com"))
    with session_scope() as s:
        assert s.exec(select(AppUser).where(AppUser.email == "kate@example.com")).first() is None


def test_plain_case_differences_still_link(db_url: str) -> None:
    victim = password_user("kate@example.com")
    with session_scope() as s:  # an operator created it (``users create``): the email is proven
        row = s.get(AppUser, victim)
        assert row is not None
        row.email_verified_at = utcnow()
        s.add(row)
    assert resolve(ident("Kate@Example.COM", sub="kate-sub")).id == victim


def test_oidc_does_not_link_into_a_password_account_whose_email_was_never_proven(
    db_url: str,
) -> None:
    """Pre-account hijack: Mallory registers the victim's address with a password before the
    victim ever signs in. The victim's first OIDC login is refused with a way out (sign in with
    the password and connect, or ask an admin) — never linked into Mallory's account, and
    never a second account with the same address."""
    squatter = password_user("victim@example.com")  # Mallory registered it first
    with pytest.raises(oidc.OidcFailure) as err:
        resolve(ident("victim@example.com", sub="real-victim"))
    assert err.value.code == "oidc_link_required"
    assert squatter not in links() and links() == []
    with session_scope() as s:
        users = s.exec(select(AppUser)).all()
    assert [u.id for u in users] == [squatter]


@pytest.mark.parametrize("lookalike", ["\u212aate@example.com", "\u0130an@example.com"])
def test_password_registration_refuses_lookalikes_of_ascii_letters(
    db_url: str, lookalike: str
) -> None:
    """The same trap at password registration: "\u212aate@…" lower-cases to "kate@…" and would
    take Kate's address (and then her OIDC sign-ins would be refused as someone else's)."""
    from elexirion_app.core.errors import InputError

    with pytest.raises(InputError, match="only looks like a letter"), session_scope() as s:
        auth.register(s, lookalike, "password-123")
    with session_scope() as s:
        assert s.exec(select(AppUser)).all() == []
    assert auth.normalize_email("Éva@Example.com") == "éva@example.com"  # real letters stay
