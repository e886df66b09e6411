"""The console's door: sign-in, the session cookie, CSRF on every form, and the 404 rule.

Plain HTTP (no browser), so these run wherever the rest of the suite runs.
"""

from __future__ import annotations

import httpx
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project
from tests.console.signing_in import console_client, form_csrf, sign_in
from tests.harness import RapportServer

PAGES = [
    "/console/responses",
    "/console/conversations",
    "/console/background",
    "/console/usage",
    "/console/keys",
    "/console/responses/resp_000000000000abc",
    "/console/conversations/conv_000000000000abc",
]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_works_without_signing_in(rapport: RapportServer, path: str) -> None:
    with console_client(rapport) as client:
        answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in")
    if "/resp_" not in path and "/conv_" not in path:
        assert answer.headers["location"] == f"/console/sign-in?next={path}"


def test_htmx_requests_without_a_session_are_sent_to_sign_in(rapport: RapportServer) -> None:
    with console_client(rapport) as client:
        answer = client.get("/console/background", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["hx-redirect"].startswith("/console/sign-in")


def test_sign_in_sets_an_http_only_strict_cookie_without_the_key(
    rapport: RapportServer, project: Project
) -> None:
    with console_client(rapport) as client:
        form = client.get("/console/sign-in")
        answer = client.post(
            "/console/sign-in", data={"key": project.secret, "_csrf": form_csrf(form.text)}
        )
        assert answer.status_code == 303
        cookie = next(
            value
            for name, value in answer.headers.multi_items()
            if name == "set-cookie" and value.startswith("rapport_console=")
        )
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert not cookie.startswith('rapport_console="')  # no quoting: a plain token
        assert "Path=/console" in cookie
        assert project.secret not in cookie
        assert project.secret[len("sk-gateway-") :] not in answer.headers.get("location", "")
        page = client.get("/console/responses")
        assert page.status_code == 200
        assert project.project_id in page.text
        assert project.secret not in page.text


def test_a_wrong_key_is_refused_and_not_echoed(rapport: RapportServer) -> None:
    wrong = "sk-gateway-not-a-real-key-0123456789abcdef"
    with console_client(rapport) as client:
        form = client.get("/console/sign-in")
        answer = client.post("/console/sign-in", data={"key": wrong, "_csrf": form_csrf(form.text)})
        assert answer.status_code == 401
        assert wrong not in answer.text
        assert wrong[-4:] not in answer.text
        assert "rapport_console=" not in answer.headers.get("set-cookie", "")
        assert client.get("/console/responses").status_code == 303


def test_sign_in_needs_its_csrf_token(rapport: RapportServer, project: Project) -> None:
    with console_client(rapport) as client:
        client.get("/console/sign-in")
        answer = client.post("/console/sign-in", data={"key": project.secret, "_csrf": "forged"})
        assert answer.status_code == 403
        assert client.get("/console/responses").status_code == 303
    with console_client(rapport) as stranger:  # no sign-in cookie at all: a cross-site post
        answer = stranger.post("/console/sign-in", data={"key": project.secret, "_csrf": "x"})
        assert answer.status_code == 403


def test_every_form_needs_the_session_csrf_token(rapport: RapportServer, project: Project) -> None:
    with console_client(rapport) as client:
        csrf = sign_in(client, project.secret)
        for path, data in [
            ("/console/keys", {"name": "forged"}),
            (f"/console/keys/{project.key_id}/revoke", {}),
            ("/console/responses/resp_0/cancel", {}),
            ("/console/sign-out", {}),
        ]:
            refused = client.post(path, data=data)
            assert refused.status_code == 403, path
            forged = client.post(path, data={**data, "_csrf": csrf[::-1]})
            assert forged.status_code == 403, path
        # Nothing happened: the key is live and no key named "forged" exists.
        keys = client.get("/console/keys")
        assert "forged" not in keys.text
        assert "revoked" not in keys.text
        # The header htmx sends is as good as the form field.
        by_header = client.post(
            "/console/keys", data={"name": "by-header"}, headers={"X-CSRF-Token": csrf}
        )
        assert by_header.status_code == 200
        assert "by-header" in by_header.text


def test_a_forged_or_foreign_cookie_is_no_session(rapport: RapportServer) -> None:
    with console_client(rapport) as client:
        client.cookies.set("rapport_console", "gAAAAABforged", path="/console")
        assert client.get("/console/responses").status_code == 303


async def test_foreign_ids_are_404_in_the_console(
    rapport: RapportServer, project: Project, other_client: AsyncOpenAI
) -> None:
    foreign = await other_client.responses.create(model="test-model", input="theirs")
    conversation = await other_client.conversations.create()
    with console_client(rapport) as client:
        csrf = sign_in(client, project.secret)
        for path in (
            f"/console/responses/{foreign.id}",
            f"/console/responses/{foreign.id}/items?side=input",
            f"/console/conversations/{conversation.id}",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert foreign.output_text not in answer.text
        cancel = client.post(f"/console/responses/{foreign.id}/cancel", data={"_csrf": csrf})
        assert cancel.status_code == 404
        search = client.get("/console/responses", params={"q": foreign.id})
        assert search.status_code == 200
        assert "No response" in search.text


async def test_a_foreign_key_cannot_be_revoked(
    rapport: RapportServer, project: Project, other_project: Project, other_client: AsyncOpenAI
) -> None:
    with console_client(rapport) as client:
        csrf = sign_in(client, project.secret)
        answer = client.post(f"/console/keys/{other_project.key_id}/revoke", data={"_csrf": csrf})
        assert answer.status_code == 404
    await other_client.models.list()  # still live


def test_revoking_the_session_key_signs_out(rapport: RapportServer, project: Project) -> None:
    with console_client(rapport) as client:
        csrf = sign_in(client, project.secret)
        answer = client.post(f"/console/keys/{project.key_id}/revoke", data={"_csrf": csrf})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/sign-in"
        assert client.get("/console/responses").status_code == 303


def test_sign_out_ends_the_session(rapport: RapportServer, project: Project) -> None:
    with console_client(rapport) as client:
        csrf = sign_in(client, project.secret)
        answer = client.post("/console/sign-out", data={"_csrf": csrf})
        assert answer.status_code == 303
        assert client.get("/console/responses").status_code == 303


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(
    rapport: RapportServer, project: Project
) -> None:
    with console_client(rapport) as client:
        for asked, landed in [
            ("/console/usage", "/console/usage"),
            ("//evil.example/console/", "/console/responses"),
            ("https://evil.example/", "/console/responses"),
        ]:
            client.cookies.clear()
            form = client.get("/console/sign-in", params={"next": asked})
            answer = client.post(
                "/console/sign-in",
                data={"key": project.secret, "_csrf": form_csrf(form.text), "next": asked},
            )
            assert answer.headers["location"] == landed


def test_pages_carry_security_headers(rapport: RapportServer, project: Project) -> None:
    with console_client(rapport) as client:
        for answer in (client.get("/console/sign-in"), client.get("/console/responses")):
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            assert answer.headers["x-frame-options"] == "DENY"
        sign_in(client, project.secret)
        page = client.get("/console/responses")
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["content-type"].startswith("text/html")


def test_errors_are_pages_without_traces(rapport: RapportServer, project: Project) -> None:
    with console_client(rapport) as client:
        sign_in(client, project.secret)
        answer = client.get("/console/responses/resp_0/items", params={"side": "sideways"})
        assert answer.status_code in (400, 404)
        assert answer.headers["content-type"].startswith("text/html")
        assert "Traceback" not in answer.text


def test_api_routes_are_unchanged_by_the_console(rapport: RapportServer) -> None:
    answer = httpx.get(f"http://127.0.0.1:{rapport.port}/v1/responses/resp_x")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
