"""The console in a real browser: Playwright driving Debian's Chromium against a real Rapport
with data made through the openai SDK. Screenshots of each page are kept as test artefacts
(under the test's tmp dir and tests/artifacts/console/)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI, AuthenticationError

from tests.conftest import Project, sdk, server_settings
from tests.console.browser import Visit, browsing, require_browser
from tests.console.data import story
from tests.console.signing_in import root
from tests.harness import RapportServer
from tests.upstream import TestUpstream

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def console_server(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    """A Rapport whose upstream calls may take a minute, so a background response can be
    watched while it runs (the shared server gives up after 2 s). Background runs stream from
    the upstream, and the test upstream's `[sleep:MS]` waits before each chunk of a stream."""
    require_browser()
    server = RapportServer(
        server_settings(database_url, upstream, upstream_timeout_seconds=60.0)
    ).start()
    yield server
    server.stop()


@pytest.fixture
def rapport(console_server: RapportServer) -> RapportServer:
    return console_server


@pytest.fixture
def client(console_server: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(console_server, project)


@pytest.fixture
async def visit(tmp_path: Path) -> AsyncIterator[Visit]:
    require_browser()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with browsing(tmp_path / "profile", shots) as opened:
        opened.page.set_default_timeout(TIMEOUT_MS)
        yield opened
    assert not opened.off_site, f"pages reached off the server: {opened.off_site}"
    assert not opened.errors, f"errors in the page: {opened.errors}"


async def sign_in(visit: Visit, server: RapportServer, project: Project, path: str) -> None:
    page = visit.page
    await page.goto(f"{root(server)}{path}")
    assert "/console/sign-in" in page.url
    await page.get_by_label("Gateway key").fill(project.secret)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")


async def test_sign_in_find_a_response_and_open_its_chain(
    visit: Visit, rapport: RapportServer, project: Project, client: AsyncOpenAI
) -> None:
    told = await story(client)
    page = visit.page
    await page.goto(f"{root(rapport)}/console/responses")
    await page.get_by_label("Gateway key").wait_for()
    await visit.screenshot("sign-in")
    await sign_in(visit, rapport, project, "/console/responses")
    assert project.secret not in page.url
    await page.get_by_role("table").wait_for()
    await visit.screenshot("responses")

    await page.get_by_label("Status").select_option("completed")  # htmx swaps the results
    await page.wait_for_url(re.compile(r"status=completed"))
    await page.get_by_label("Find by id").fill(told.second)
    await page.get_by_label("Find by id").press("Enter")
    await page.wait_for_url(f"**/console/responses/{told.second}")
    await page.get_by_role("heading", name=re.compile("Response")).wait_for()
    assert told.second in await page.get_by_role("heading", level=1).inner_text()
    chain = page.locator("section", has=page.get_by_role("heading", name="Chain"))
    assert await chain.get_by_role("link", name=f"Response {told.first}").count() == 1
    assert await chain.get_by_role("link", name=f"Response {told.branch}").count() == 1
    await visit.screenshot("response")

    await chain.get_by_role("link", name=f"Response {told.first}").click()
    await page.wait_for_url(f"**/console/responses/{told.first}")
    await page.get_by_text("thinking about primes", exact=True).wait_for()
    await visit.screenshot("response-chain-root")

    await page.goto(f"{root(rapport)}/console/responses/{told.tool_answer}")
    await page.get_by_text("sunny, 21 C").first.wait_for()
    await page.goto(f"{root(rapport)}/console/responses/{told.tool_call}")
    await page.get_by_text("Tool call").first.wait_for()
    await visit.screenshot("response-tool-call")

    await page.goto(f"{root(rapport)}/console/conversations/{told.conversation}")
    await page.get_by_text("Added by hand", exact=True).wait_for()
    await visit.screenshot("conversation")
    await page.goto(f"{root(rapport)}/console/conversations")
    await visit.screenshot("conversations")


async def test_watch_a_background_response_finish_and_cancel_another(
    visit: Visit, rapport: RapportServer, project: Project, client: AsyncOpenAI
) -> None:
    await sign_in(visit, rapport, project, "/console/background")
    page = visit.page
    await page.evaluate("window.__notReloaded = true")
    quick = await client.responses.create(
        model="test-model", input="[sleep:500] soon done", background=True
    )
    slow = await client.responses.create(
        model="test-model", input="[sleep:5000] never mind", background=True
    )
    # New rows arrive by polling, and show running before they finish.
    await page.wait_for_selector(f"#bg-{quick.id}[data-status=in_progress]")
    await visit.screenshot("background-running")
    await page.wait_for_selector(f"#bg-{quick.id}[data-status=completed]", timeout=TIMEOUT_MS)
    assert await page.evaluate("window.__notReloaded") is True  # updated in place
    await page.get_by_role("button", name=f"Cancel {slow.id}").click()
    await page.wait_for_selector(f"#bg-{slow.id}[data-status=cancelled]")
    await page.get_by_text(f"{slow.id} is cancelled.").wait_for()
    await visit.screenshot("background-cancelled")
    assert (await client.responses.retrieve(slow.id)).status == "cancelled"


async def test_usage_charts_draw(
    visit: Visit, rapport: RapportServer, project: Project, client: AsyncOpenAI
) -> None:
    for model in ("test-model", "renamed", "test-model"):
        await client.responses.create(model=model, input="count me")
    await sign_in(visit, rapport, project, "/console/usage")
    page = visit.page
    await page.wait_for_selector(".chart .uplot canvas")
    assert await page.locator(".chart .uplot").count() == 2
    await visit.screenshot("usage-by-model")
    await page.get_by_label("Per", exact=True).select_option("key")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(re.compile(r"by=key"))
    await page.wait_for_selector(".chart .uplot canvas")
    await visit.screenshot("usage-by-key")


async def test_create_a_key_then_revoke_it(
    visit: Visit, rapport: RapportServer, project: Project
) -> None:
    await sign_in(visit, rapport, project, "/console/keys")
    page = visit.page
    await page.get_by_label("Name").fill("from the browser")
    await page.get_by_role("button", name="Create key").click()
    secret = await page.get_by_label("Secret").input_value()
    assert secret.startswith("sk-gateway-")
    await visit.screenshot("key-created")
    made = AsyncOpenAI(base_url=rapport.base_url, api_key=secret, max_retries=0)
    await made.models.list()
    await page.goto(f"{root(rapport)}/console/keys")
    assert secret not in await page.content()
    await page.get_by_role("button", name=re.compile(r"Revoke from the browser")).click()
    row = page.get_by_role("row", name=re.compile("from the browser"))
    await row.get_by_text("revoked").wait_for()
    await visit.screenshot("key-revoked")
    # The API caches a resolved key for a few seconds (app/auth.py): revoked within 5 s.
    deadline = asyncio.get_running_loop().time() + 8
    with pytest.raises(AuthenticationError):  # noqa: PT012
        while asyncio.get_running_loop().time() < deadline:
            await made.models.list()
            await asyncio.sleep(0.5)


async def test_keyboard_reaches_the_skip_link_and_the_openapi_page_loads_offline(
    visit: Visit, rapport: RapportServer, project: Project
) -> None:
    await sign_in(visit, rapport, project, "/console/responses")
    page = visit.page
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.goto(f"{root(rapport)}/openapi")
    await page.wait_for_selector(".swagger-ui .information-container")
    await page.get_by_text("/v1/responses").first.wait_for()
    await visit.screenshot("openapi")
