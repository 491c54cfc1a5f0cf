"""The authorization matrix: every registered event handler is listed here, and each is
called by an anonymous tab and by a second user holding the first user's ids, with forged
payloads. A handler added to the app but not to ``HANDLERS`` fails this suite (issue 7 item 7).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
from typing import Any

import reflex as rx

from tests.security.conftest import Account, Served, connect
from tests.support.reflex_client import ReflexClient

# Reflex's own handlers (hydration, on_load, client storage, frontend error reports).
REFLEX_INTERNAL = {
    "reflex___state____state": {"hydrate", "hydrate_and_load", "set_is_hydrated", "setvar"},
    "reflex___state____state.reflex___state____frontend_event_exception_state": {
        "handle_frontend_exception",
        "setvar",
    },
    "reflex___state____state.reflex___state____on_load_internal_state": {
        "on_load_internal",
        "set_is_hydrated",
        "setvar",
    },
    "reflex___state____state.reflex___state____update_vars_internal_state": {
        "setvar",
        "update_vars_internal",
    },
    "reflex___state____state.reflex___istate___shared____shared_state_base_internal": {"setvar"},
}
P = "reflex___state____state.elexirion_app___web___state___"
# Ours: the handler and the page it is called from.
HANDLERS: dict[str, dict[str, str]] = {
    P + "admin____admin_state": dict.fromkeys(
        [
            "filter_audit",
            "load",
            "older",
            "save_budget",
            "save_limits",
            "set_active",
            "set_role",
            "setvar",
        ],
        "/admin",
    ),
    P + "auth____auth_state": {"check_login": "/chat", "load_auth_page": "/login", "setvar": "/"},
    P + "chat____chat_state": dict.fromkeys(
        [
            "cancel_edit",
            "delete_conversation",
            "load",
            "load_earlier",
            "new_conversation",
            "regenerate",
            "rename",
            "save_edit",
            "select_conversation",
            "send",
            "setvar",
            "start_edit",
            "start_rename",
            "stop",
            "stream_reply",
            "switch_sibling",
        ],
        "/chat",
    ),
    P + "dashboard____dashboard_state": dict.fromkeys(
        ["export_csv", "load", "reset_filters", "set_filter", "setvar"], "/dashboard"
    ),
    P + "editor____editor_state": dict.fromkeys(
        [
            "add_part",
            "add_step",
            "connect_nodes",
            "copy_to_library",
            "delete_node",
            "export",
            "load",
            "node_dragged",
            "remove_part",
            "rename_node",
            "select_node",
            "set_field",
            "set_part",
            "setvar",
            "yaml_changed",
        ],
        "/pipelines/edit?name=untitled",
    ),
    P + "editor_run____editor_run_state": dict.fromkeys(
        ["prepare", "run", "setvar", "show_step", "stop"], "/pipelines/edit?name=untitled"
    ),
    P + "editor_versions____versions_state": dict.fromkeys(
        ["choose", "diff", "refresh", "rollback", "save", "setvar"],
        "/pipelines/edit?name=untitled",
    ),
    P + "library____library_state": dict.fromkeys(
        [
            "delete",
            "duplicate",
            "export",
            "import_files",
            "load",
            "new_blank",
            "new_from_template",
            "search",
            "setvar",
        ],
        "/pipelines",
    ),
    P + "notice____notice_state": {"dismiss": "/chat", "setvar": "/", "show": "/chat"},
    P + "runs____runs_state": {
        "load_detail": "/runs/view",
        "load_list": "/runs",
        "load_trace": "/runs/trace",
        "setvar": "/",
    },
    P + "settings____settings_state": dict.fromkeys(
        ["create_key", "key_dialog_changed", "load", "revoke_key", "setvar"], "/settings"
    ),
    P + "workspace____workspace_state": {
        "delete": "/workspace",
        "load": "/workspace",
        "setvar": "/",
        "upload": "/workspace",
        "use_folder": "/workspace",
    },
}
ONE_MB = "x" * (1024 * 1024)
FORGED: list[Any] = [10**30, "²", ONE_MB, {"nested": [1, {"a": None}]}, None, -1, 3.5, True]


def _registered() -> dict[str, set[str]]:
    import elexirion_app.elexirion_app  # noqa: F401  (registers every state)

    out: dict[str, set[str]] = {}

    def walk(cls: type[rx.State]) -> None:
        out[cls.get_full_name()] = set(cls.event_handlers)
        for sub in cls.get_substates():
            walk(sub)

    walk(rx.State)
    return out


def _params(state: str, handler: str) -> list[str]:
    import elexirion_app.elexirion_app  # noqa: F401

    cls = rx.State.get_class_substate(state)
    fn = cls.event_handlers[handler].fn
    return [p for p in list(inspect.signature(fn).parameters)[1:]]


def test_every_registered_handler_is_in_the_matrix() -> None:
    expected = {**REFLEX_INTERNAL, **{k: set(v) for k, v in HANDLERS.items()}}
    assert _registered() == expected


def _payloads(params: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{}, {"unexpected": 1}]
    for value in FORGED:
        if value is ONE_MB:
            # A megabyte in one argument: more than the socket's 4 MB frame cap in all of a
            # four-argument handler would (rightly) get the connection closed instead.
            out.append({p: (value if i == 0 else "x") for i, p in enumerate(params)})
            continue
        out.append({p: value for p in params})
    if params:
        out.append({params[0]: {"message": ONE_MB, "title": "\u202eevil", "text": 10**30}})
    return out


def _bad_frames(client: ReflexClient) -> list[str]:
    return [
        f[:300]
        for f in client.raw_frames
        if "An error occurred" in f or "Traceback" in f or "Contact the website" in f
    ]


def _downloads(client: ReflexClient) -> str:
    """The text of every file the server told this tab to download (data URLs decoded)."""
    out = []
    for e in client.frontend_events:
        url = str((e.get("payload") or {}).get("url") or "") if e["name"] == "_download" else ""
        out.append(base64.b64decode(url.split(",", 1)[1]).decode() if ";base64," in url else url)
    return "\n".join(out)


async def _open_pipeline(client: ReflexClient) -> str:
    """A new pipeline of this tab's user, open in its editor with a step selected."""
    await client.emit(f"{P}library____library_state.new_blank", {}, "/pipelines")
    redirected = lambda: any(e["name"] == "_redirect" for e in client.frontend_events)  # noqa: E731
    await client.wait_for(redirected, 30)
    page = [e for e in client.frontend_events if e["name"] == "_redirect"][-1]["payload"]["path"]
    await client.emit(f"{P}editor____editor_state.load", {}, page)
    await client.emit(f"{P}editor____editor_state.select_node", {"node_id": "first_step"}, page)
    return str(page)


async def _battery(served: Served, account: Account | None) -> list[str]:
    client = await connect(served, account)
    bad: list[str] = []
    try:
        # Logged in, the editor's handlers meet a pipeline of the user's own, open and with a
        # step selected (with nothing open most of them return early).
        opened = await _open_pipeline(client) if account is not None else ""
        for state, handlers in HANDLERS.items():
            for handler, page in handlers.items():
                page = opened if opened and page.startswith("/pipelines/edit") else page
                for payload in _payloads(_params(state, handler)):
                    await client.emit(f"{state}.{handler}", payload, page)
                await asyncio.sleep(0.05)
        await client.emit(f"{P}auth____auth_state.check_login", {}, "/chat")  # still alive?
        await asyncio.sleep(2)
        bad = _bad_frames(client)
    finally:
        await client.close()
    return bad


async def test_forged_payloads_anonymous(served: Served) -> None:
    assert await _battery(served, None) == []


async def test_forged_payloads_logged_in(served: Served, bob: Account) -> None:
    assert await _battery(served, bob) == []
    assert "event handler failed" not in served.log.read_text()


async def test_second_user_with_first_users_ids_gets_nothing(
    served: Served, alice: Account, bob: Account
) -> None:
    secret = "alice's quarterly numbers 90210"
    owner = await connect(served, alice)
    try:
        await owner.emit(f"{P}chat____chat_state.load", {}, "/chat")
        await owner.emit(f"{P}chat____chat_state.send", {"form_data": {"message": secret}}, "/chat")
        await owner.wait_for(
            lambda: (
                len(owner.var(P + "chat____chat_state", "tail") or []) >= 2
                and owner.var(P + "chat____chat_state", "streaming") is False
            ),
            90,
        )
    finally:
        await owner.close()
    with served.db() as conn:
        conv = conn.execute(
            "select id, title from conversation where user_id = ? order by id desc",
            (alice.user_id,),
        ).fetchone()
        msgs = conn.execute(
            "select id, role, content from message where conversation_id = ?", (conv[0],)
        ).fetchall()
        run = conn.execute("select id from run where user_id = ?", (alice.user_id,)).fetchone()
    user_msg = next(m[0] for m in msgs if m[1] == "user")
    reply = next(m[0] for m in msgs if m[1] == "assistant")
    thief = await connect(served, bob)
    chat = P + "chat____chat_state"
    try:
        await thief.emit(f"{chat}.load", {}, f"/chat?c={conv[0]}")
        for handler, payload in [
            ("select_conversation", {"conversation_id": conv[0]}),
            ("start_rename", {"conversation_id": conv[0]}),
            ("rename", {"form_data": {"title": "pwned"}}),
            ("switch_sibling", {"message_id": reply, "step": 1}),
            ("regenerate", {"message_id": reply}),
            ("start_edit", {"message_id": user_msg}),
            ("save_edit", {"form_data": {"text": "pwned"}}),
            ("delete_conversation", {"conversation_id": conv[0]}),
        ]:
            await thief.emit(f"{chat}.{handler}", payload, "/chat")
        if run is not None:
            await thief.emit(f"{P}runs____runs_state.load_detail", {}, f"/runs/view?id={run[0]}")
        await thief.emit(f"{P}auth____auth_state.check_login", {}, "/chat")
        await asyncio.sleep(3)
        assert not any(secret in f for f in thief.raw_frames)
        assert not any(alice.email in f for f in thief.raw_frames)
        assert _bad_frames(thief) == []
    finally:
        await thief.close()
    with served.db() as conn:
        after = conn.execute(
            "select id, title from conversation where id = ?", (conv[0],)
        ).fetchone()
        count = conn.execute(
            "select count(*) from message where conversation_id = ?", (conv[0],)
        ).fetchone()[0]
    assert after == conv and count == len(msgs)  # not renamed, deleted or extended


# --- HTTP routes of our own (the auth routes; /_upload is Reflex's, guarded) ------------------

ROUTES = {"/auth/login": "POST", "/auth/register": "POST", "/auth/logout": "POST"}
# Single sign-on: browser navigations (GET; Starlette adds HEAD).
OIDC_ROUTES = {
    "/auth/oidc/{provider}/login": "GET",
    "/auth/oidc/{provider}/callback": "GET",
    "/auth/oidc/{provider}/connect": "GET",  # Settings' link: needs a live session
}


def test_every_http_route_is_in_the_matrix() -> None:
    from elexirion_app.api import auth_routes, oidc_routes

    listed = {r.path: sorted(r.methods or []) for r in auth_routes.ROUTES + oidc_routes.ROUTES}
    assert listed == {p: [m] for p, m in ROUTES.items()} | {
        p: sorted({m, "HEAD"}) for p, m in OIDC_ROUTES.items()
    }


def test_oidc_routes_answer_forged_requests_cleanly(served: Served) -> None:
    """Unknown providers, no pending-login cookie, a forged one, another state, a provider
    error, huge queries and cookies: each a clean 4xx (JSON for a client asking for it, a
    redirect to the login page's message for a browser), no session, nothing linked."""
    import httpx

    from tests.security.conftest import register

    someone = register(served)
    cb = "/auth/oidc/corp/callback"
    forged: list[tuple[str, str | None, int, str]] = [
        ("/auth/oidc/nope/login", None, 404, "oidc_provider"),
        ("/auth/oidc/" + "x" * 3000 + "/login", None, 404, "oidc_provider"),
        ("/auth/oidc/nope/callback?code=c&state=s", None, 404, "oidc_provider"),
        (cb, None, 400, "oidc_state"),
        (f"{cb}?code=c&state=s", None, 400, "oidc_state"),
        (f"{cb}?code=c&state=s", "elx_oidc=forged-key", 400, "oidc_state"),
        (f"{cb}?code=c&state=s", someone.cookie, 400, "oidc_state"),
        (f"{cb}?error=access_denied&state=s", "elx_oidc=forged-key", 400, "oidc_state"),
        (f"{cb}?code=c&state=" + "s" * 20_000, "elx_oidc=" + "k" * 4000, 400, "oidc_state"),
        (f"{cb}?code=" + "c" * 20_000 + "&state=s&state=t", None, 400, "oidc_state"),
    ]
    for path, cookie, status, code in forged:
        headers = {"Accept": "application/json", **({"Cookie": cookie} if cookie else {})}
        resp = httpx.get(f"{served.url}{path}", headers=headers, timeout=30)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), path[:80]
        assert "elx_session" not in resp.headers.get("set-cookie", "")
    browser = httpx.get(f"{served.url}{cb}?code=c&state=s", timeout=30)
    assert browser.status_code == 303
    assert browser.headers["location"] == "/login?error=oidc_state"
    # A provider name that decodes to more path segments matches no route at all.
    odd = httpx.get(f"{served.url}/auth/oidc/..%2F..%2Fauth%2Flogin/login", timeout=30)
    assert odd.status_code == 404 and "Traceback" not in odd.text
    # A far larger query (near the client's URL limit): refused, never with a 5xx.
    huge = httpx.get(
        f"{served.url}{cb}?state=" + "s" * 60_000,
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert 400 <= huge.status_code < 500, huge.status_code
    assert httpx.post(f"{served.url}{cb}", timeout=30).status_code == 405
    # Connect: anonymous, a forged session, a cross-site navigation with a stolen cookie,
    # an unknown provider — nothing started; a link cookie forged for someone's account on a
    # callback is refused before any provider is asked.
    connect = "/auth/oidc/corp/connect"
    for cookie, site, where in [
        (None, "same-origin", "/login"),
        ("elx_session=forged", "same-origin", "/login"),
        (someone.cookie, "cross-site", "/settings?error=origin"),
    ]:
        headers = {"Sec-Fetch-Site": site, **({"Cookie": cookie} if cookie else {})}
        resp = httpx.get(f"{served.url}{connect}", headers=headers, timeout=30)
        assert (resp.status_code, resp.headers["location"]) == (303, where), (cookie, site)
    nope = httpx.get(f"{served.url}/auth/oidc/nope/connect", headers={"Cookie": someone.cookie})
    assert nope.status_code == 303 and "oidc_provider" in nope.headers["location"]
    link = f"elx_oidc=forged-key; elx_oidc_link={someone.user_id}.{'0' * 64}"
    resp = httpx.get(f"{served.url}{cb}?code=c&state=s", headers={"Cookie": link}, timeout=30)
    assert resp.headers["location"] == "/settings?error=oidc_link_expired"
    assert served.count("select count(*) from oidc_identity") == 0
    assert served.count("select count(*) from oidc_pending") == 0


def test_http_routes_answer_forged_requests_cleanly(served: Served) -> None:
    """Malformed bodies on every route, anonymous, with a live and with a forged cookie. The
    rate-limited routes get only bodies refused before a try is counted (the brute-force
    tests that run later need the address's allowance)."""
    import httpx

    from tests.security.conftest import register

    someone = register(served)
    forged: list[dict[str, Any]] = [
        {"content": b"\xff\xfe not utf-8", "headers": {"content-type": "application/json"}},
        {"content": b"[1, 2, 3]", "headers": {"content-type": "application/json"}},
        {
            "content": b'{"email": 1e400, "password": ["x"]}',
            "headers": {"content-type": "application/json"},
        },
        {"data": {"email": "²" * 10_000, "password": "x" * 10_000}},
        {"content": b"e=" + b"x" * 200_000},
    ]
    refused_before_counting = [forged[0], forged[1], forged[4]]
    for path in ROUTES:
        battery = forged if path == "/auth/logout" else refused_before_counting
        for cookie in (None, someone.cookie, "elx_session=" + "f" * 300):
            for request in battery:
                headers = {"Accept": "application/json", **request.get("headers", {})}
                if cookie:
                    headers["Cookie"] = cookie
                body = {k: v for k, v in request.items() if k != "headers"}
                resp = httpx.post(f"{served.url}{path}", headers=headers, timeout=30, **body)
                assert resp.status_code < 500, (path, resp.status_code, resp.text[:200])
                assert "Traceback" not in resp.text
    # GET on a POST route is refused, not served.
    assert httpx.get(f"{served.url}/auth/logout").status_code in (404, 405)


async def test_second_user_cannot_see_or_change_the_first_users_pipelines(
    served: Served, alice: Account, bob: Account
) -> None:
    lib, ed = P + "library____library_state", P + "editor____editor_state"
    versions, run = P + "editor_versions____versions_state", P + "editor_run____editor_run_state"
    secret = "alice-secret-prompt-4711"
    owner = await connect(served, alice)
    try:
        await owner.emit(f"{lib}.new_blank", {}, "/pipelines")
        await owner.wait_for(lambda: owner.frontend_events != [], 30)
        await asyncio.sleep(1)
    finally:
        await owner.close()
    with served.db() as conn:
        doc = conn.execute(
            "select id, name from pipeline_doc where user_id = ? order by id desc",
            (alice.user_id,),
        ).fetchone()
        conn.execute(
            "update pipeline_version set yaml = yaml || ? where pipeline_id = ?",
            (f"# {secret}\n", doc[0]),
        )
    name = doc[1]
    # Alice's versions only: Bob's own pipelines may share the name (and his handlers may
    # legitimately delete or copy his own).
    alices = (
        "select count(*) from pipeline_version v join pipeline_doc d on v.pipeline_id = d.id "
        "where d.user_id = ?"
    )
    before = served.count(alices, alice.user_id)
    thief = await connect(served, bob)
    page = f"/pipelines/edit?name={name}"
    try:
        await thief.emit(f"{ed}.load", {}, page)
        for handler, payload in [
            ("yaml_changed", {"text": "workflow: {name: pwned, steps: []}"}),
            ("add_step", {"step_type": "claude"}),
            ("delete_node", {"node_id": "first_step"}),
            ("node_dragged", {"node_id": "first_step", "x": 1, "y": 2, "index": 0}),
            ("copy_to_library", {}),
            ("export", {}),
        ]:
            await thief.emit(f"{ed}.{handler}", payload, page)
        await thief.emit(f"{versions}.save", {"form_data": {"version_name": "x"}}, page)
        await thief.emit(f"{versions}.choose", {"number": 1}, page)
        await thief.emit(f"{versions}.rollback", {}, page)
        await thief.emit(f"{versions}.diff", {}, page)
        await thief.emit(f"{run}.run", {"form_data": {}}, page)
        for handler in ("duplicate", "export", "delete", "new_from_template"):
            await thief.emit(f"{lib}.{handler}", {"name": name}, "/pipelines")
            await thief.emit(f"{lib}.{handler}", {"key": name}, "/pipelines")
        await thief.emit(f"{lib}.search", {"query": name}, "/pipelines")
        await thief.emit(f"{P}auth____auth_state.check_login", {}, "/chat")
        await asyncio.sleep(3)
        assert not any(secret in f for f in thief.raw_frames)
        assert secret not in _downloads(thief)  # an export is a base64 data URL
        assert _bad_frames(thief) == []
    finally:
        await thief.close()
    assert served.count(alices, alice.user_id) == before
    # Nothing of Alice's reached Bob's library, and no run of Bob's ran her pipeline.
    copied = (
        "select count(*) from pipeline_version v join pipeline_doc d on v.pipeline_id = d.id "
        "where d.user_id = ? and (v.yaml like ? or d.draft_yaml like ?)"
    )
    assert served.count(copied, bob.user_id, f"%{secret}%", f"%{secret}%") == 0
    assert served.count("select count(*) from run where pipeline_id = ?", doc[0]) == 0
    assert (
        served.count(
            "select count(*) from run where user_id = ? and pipeline_yaml like ?",
            bob.user_id,
            f"%{secret}%",
        )
        == 0
    )
    with served.db() as conn:
        assert conn.execute("select name from pipeline_doc where id = ?", (doc[0],)).fetchone()
