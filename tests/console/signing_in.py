"""Signing a plain HTTP client in to the console, as a browser's form post would."""

from __future__ import annotations

import re

import httpx

from tests.harness import RapportServer

CSRF_FIELD = re.compile(r'name="_csrf" value="([^"]+)"')


def root(server: RapportServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def form_csrf(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def console_client(server: RapportServer) -> httpx.Client:
    return httpx.Client(base_url=root(server), follow_redirects=False, timeout=10)


def sign_in(client: httpx.Client, secret: str) -> str:
    """Signs `client` in with `secret`; returns the session's CSRF token (from a page)."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    answer = client.post(
        "/console/sign-in", data={"key": secret, "_csrf": form_csrf(form.text), "next": ""}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/responses"
    page = client.get("/console/keys")
    assert page.status_code == 200
    return form_csrf(page.text)


def async_console_client(server: RapportServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=root(server), follow_redirects=False, timeout=10)


async def async_sign_in(client: httpx.AsyncClient, secret: str) -> str:
    form = await client.get("/console/sign-in")
    answer = await client.post(
        "/console/sign-in", data={"key": secret, "_csrf": form_csrf(form.text), "next": ""}
    )
    assert answer.status_code == 303, answer.text
    return form_csrf((await client.get("/console/keys")).text)
