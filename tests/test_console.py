"""The operator console (``GET /console``), in a real browser: Debian's Chromium, driven
by Playwright's async API in the test's event loop (where the in-process server runs),
against the service and two Ollama emulators. Screenshots go to tests/artifacts/console/.

Also, without a browser: the security headers of the console's responses, and the
history and recent failures that Stats now carries for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    async_playwright,
    expect,
)

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from ollama_emulator.content import answer_text, thinking_text
from server.history import BUCKETS, MAX_FAILURES, History
from server.stats import Outcome, RequestRecord
from tests.conftest import LocalShimStarter, StackFactory, embedding_dim, ollama_tags

ARTIFACTS = Path(__file__).parent / "artifacts" / "console"
# Without the background-networking flags Chromium's own connections (updates, sync,
# safe browsing) are refused on a closed network, and noisy; nothing here needs them.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY_STORAGE = "llm-console-key"


def chromium() -> str:
    """Debian's chromium (scripts/test.sh installs it), or CHROMIUM."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.fail(f"no Chromium at {found}: install Debian's chromium or set CHROMIUM")
    return found


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile every test
            executable_path=chromium(),
            args=LAUNCH_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
def second_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@dataclass
class Console:
    page: Page
    errors: list[str] = field(default_factory=list)

    @property
    def refresh_ms(self) -> int:
        return 3000

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.evaluate("window.scrollTo(0, 0)")  # the sticky header on top
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    async def no_horizontal_scroll(self) -> None:
        widths = await self.page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


async def open_console(context: BrowserContext, base_url: str) -> Console:
    page = await context.new_page()
    console = Console(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    await page.goto(f"{base_url}/console")
    refresh = await page.locator("body").get_attribute("data-refresh-ms")
    assert refresh == str(console.refresh_ms)
    return console


@pytest.fixture
async def two_hosts(
    emulator: Emulator,
    second_emulator: Emulator,
    make_stack: StackFactory,
    start_local_shim: LocalShimStarter,
    tmp_path: Path,
) -> str:
    """The service (REST in process, as the image runs it) in front of two emulators
    that answer a token every 30 ms; gpt-oss:20b loaded on the first. Health is re-checked
    every second, so a host that goes away shows at the next refresh. The usage ledger
    is on (SQLite)."""
    for emu in (emulator, second_emulator):
        emu.faults.token_delay = 0.03
    emulator.load("gpt-oss:20b")
    stack = await make_stack(
        f"{emulator.url},{second_emulator.url}",
        cache_duration=1.0,
        ledger=True,
        data_dir=str(tmp_path / "data"),
    )
    return await start_local_shim(stack.server)


async def test_overview_shows_hosts_models_queue_history_and_failures(
    browser: BrowserContext, two_hosts: str, emulator: Emulator, second_emulator: Emulator
) -> None:
    async with httpx.AsyncClient(base_url=two_hosts, timeout=30.0) as client:
        ok = await client.post("/chat", json={"message": "hello", "model": "llama3.2"})
        assert ok.status_code == 200, ok.text
        failed = await client.post(
            "/chat",
            json={"message": "a-private-prompt", "model": "no-such-model"},
            headers={"x-request-id": "console-failure-1"},
        )
        assert failed.status_code == 404, failed.text

    console = await open_console(browser, two_hosts)
    page = console.page
    await expect(page.locator("#service-status")).to_have_text("healthy")
    await expect(page.locator("#service-version")).not_to_have_text("-")
    for emu in (emulator, second_emulator):
        card = page.locator(f'article.host[data-url="{emu.url}"]')
        await expect(card.locator(".pill")).to_have_text("up")
        await expect(card).not_to_have_class(re.compile(r"\bdown\b"))
        for model in ollama_tags(emu):
            await expect(card.locator(".models")).to_contain_text(model["name"])
    loaded = page.locator(f'article.host[data-url="{emulator.url}"] ul.loaded')
    await expect(loaded).to_contain_text("gpt-oss:20b")
    await expect(loaded).to_contain_text("VRAM")

    lane = page.locator('#lanes tr[data-lane="all"]')
    await expect(lane.locator(".running")).to_have_text("0")
    await expect(lane.locator(".queued")).to_have_text("0")

    for model in ollama_tags(emulator):
        row = page.locator(f'#models-table tr[data-model="{model["name"]}"]')
        await expect(row).to_contain_text(model["details"]["family"])
        await expect(row).to_contain_text(model["details"]["quantization_level"])
    await expect(page.locator('tr[data-model="gpt-oss:20b"]')).to_contain_text("thinking")
    await expect(page.locator('tr[data-model="gpt-oss:20b"]')).to_contain_text(emulator.url)
    await expect(page.locator('tr[data-model="bge-m3:latest"]')).to_contain_text("embedding")
    await expect(page.locator('tr[data-model="llama3.2:latest"] .today-requests')).to_have_text("1")

    failures = page.locator("#failures-table tbody")
    await expect(failures).to_contain_text("model_not_found")
    await expect(failures).to_contain_text("console-failure-1")
    await expect(failures).to_contain_text("NOT_FOUND")
    await expect(page.locator("#chart-rps rect.bar")).not_to_have_count(0)
    await expect(page.locator("#chart-latency rect.bar")).not_to_have_count(0)
    usage = page.locator("#usage-table tbody tr", has_text="llama3.2")
    await expect(usage.locator("td").nth(0)).to_have_text("anonymous")  # no keys: everyone
    await expect(usage.locator("td").nth(2)).to_have_text("1")  # requests today
    await expect(page.locator("#usage-table")).to_contain_text("no-such-model")
    assert "a-private-prompt" not in await page.content()

    await console.no_horizontal_scroll()
    await console.screenshot("overview-1280x800")
    assert console.errors == []


async def test_a_host_taken_down_turns_red_within_one_refresh(
    browser: BrowserContext, two_hosts: str, emulator: Emulator, second_emulator: Emulator
) -> None:
    console = await open_console(browser, two_hosts)
    page = console.page
    gone = page.locator(f'article.host[data-url="{second_emulator.url}"]')
    await expect(gone.locator(".pill")).to_have_text("up")

    await asyncio.to_thread(second_emulator.stop)
    # one refresh, and the time that refresh's answer takes
    within = console.refresh_ms + 2000
    await expect(gone).to_have_class(re.compile(r"\bdown\b"), timeout=within)
    await expect(gone.locator(".pill")).to_have_text("down")
    await expect(gone).to_contain_text("last error")
    await expect(gone).to_have_css("border-left-color", "rgb(185, 28, 28)")
    still = page.locator(f'article.host[data-url="{emulator.url}"]')
    await expect(still.locator(".pill")).to_have_text("up")
    await console.screenshot("host-down-1280x800")
    assert console.errors == []


async def test_generations_running_and_queued_show_as_they_happen(
    browser: BrowserContext,
    emulator: Emulator,
    make_stack: StackFactory,
    start_local_shim: LocalShimStarter,
) -> None:
    emulator.faults.token_delay = 0.05
    emulator.faults.answer_tokens = 600  # half a minute: longer than the test looks
    stack = await make_stack(max_concurrent=1)
    url = await start_local_shim(stack.server)
    console = await open_console(browser, url)
    lane = console.page.locator('#lanes tr[data-lane="all"]')
    await expect(lane.locator(".running")).to_have_text("0")
    within = console.refresh_ms + 2000
    async with (
        httpx.AsyncClient(base_url=url, timeout=60.0) as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "long", "model": "llama3.2"}
        ) as streaming,
    ):
        assert streaming.status_code == 200
        chunks = streaming.aiter_bytes()  # kept: dropping it would close the stream
        await anext(chunks)
        waiting = asyncio.create_task(
            client.post("/chat", json={"message": "next", "model": "llama3.2"})
        )
        await asyncio.wait_for(stack.server.limiter.wait_until_queued(1), 10)
        await expect(lane.locator(".running")).to_have_text("1", timeout=within)
        await expect(lane.locator(".queued")).to_have_text("1", timeout=within)
        # the model it loaded shows as loaded at the same refresh, on the hosts and models
        host = console.page.locator("article.host ul.loaded")
        await expect(host).to_contain_text("llama3.2:latest")
        model = console.page.locator('#models-table tr[data-model="llama3.2:latest"]')
        await expect(model).to_contain_text(emulator.url)
        await console.screenshot("queue-1280x800")
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    # both callers left: the slot and the queue are free again
    await expect(lane.locator(".running")).to_have_text("0", timeout=within)
    await expect(lane.locator(".queued")).to_have_text("0", timeout=within)
    assert console.errors == []


async def _watch_answer(page: Page) -> None:
    """Records every distinct text the answer shows, as it changes."""
    await page.evaluate(
        """() => {
            window.seenAnswers = [];
            const answer = document.getElementById("pg-answer");
            new MutationObserver(() => {
                const text = answer.textContent;
                const seen = window.seenAnswers;
                if (text && seen[seen.length - 1] !== text) seen.push(text);
            }).observe(answer, {childList: true, characterData: true, subtree: true});
        }"""
    )


async def test_playground_streams_an_answer_token_by_token_with_the_reasoning_apart(
    browser: BrowserContext, two_hosts: str, emulator: Emulator
) -> None:
    console = await open_console(browser, two_hosts)
    page = console.page
    # the service's default model is preselected: gpt-oss:20b, which reasons
    await expect(page.locator("#pg-model")).to_have_value("gpt-oss:20b")
    await expect(page.locator("#pg-route")).to_have_text("POST /chat/stream")
    prompt = "the quick brown fox jumps over the lazy dog again"
    await page.locator("#pg-message").fill(prompt)
    await _watch_answer(page)
    await page.locator("#pg-send").click()

    await expect(page.locator("#pg-stats")).to_contain_text("generated tokens", timeout=15000)
    await expect(page.locator("#pg-answer")).to_have_text(answer_text(prompt, structured=False))
    await expect(page.locator("#pg-thinking")).to_have_text(thinking_text(prompt))
    await expect(page.locator("#pg-reasoning")).to_be_visible()
    stats = page.locator("#pg-stats")
    await expect(stats).to_contain_text("prompt tokens")
    await expect(stats).to_contain_text("first token after")
    await expect(page.locator("#pg-error")).to_be_hidden()
    seen: list[str] = await page.evaluate("window.seenAnswers")
    final = answer_text(prompt, structured=False)
    # a growing text, token after token (a few may come in one read), never all at once
    assert len(seen) >= max(3, len(final.split()) // 2), seen
    assert seen[-1] == final
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(seen))
    await console.screenshot("playground-1280x800")

    # an embedding model shows the size of its vector
    await page.locator("#pg-model").select_option("bge-m3:latest")
    await expect(page.locator("#pg-route")).to_have_text("POST /embeddings")
    await page.locator("#pg-message").fill("a sentence to embed")
    await page.locator("#pg-send").click()
    dim = embedding_dim(emulator, "bge-m3")
    await expect(page.locator("#pg-answer")).to_contain_text(f"A vector of {dim} dimensions")
    await expect(page.locator("#pg-reasoning")).to_be_hidden()
    assert console.errors == []


async def test_layout_works_on_a_phone(browser: BrowserContext, two_hosts: str) -> None:
    console = await open_console(browser, two_hosts)
    page = console.page
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator("article.host")).to_have_count(2)
    await expect(page.locator("#models-table tbody tr[data-model]")).not_to_have_count(0)
    await console.no_horizontal_scroll()
    for section in ("#overview", "#models", "#usage", "#failures", "#playground", ".top"):
        box = await page.locator(section).bounding_box()
        assert box is not None, section
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (section, box)
    await page.locator("#pg-message").fill("hello from a phone")
    await page.locator("#pg-send").click()
    await expect(page.locator("#pg-answer")).to_have_text(
        answer_text("hello from a phone", structured=False), timeout=15000
    )
    await console.no_horizontal_scroll()
    await console.screenshot("console-390x844")
    assert console.errors == []


async def test_with_keys_the_console_asks_once_and_shows_no_secrets(
    browser: BrowserContext,
    emulator: Emulator,
    make_stack: StackFactory,
    start_local_shim: LocalShimStarter,
) -> None:
    key = "console-key-5f2c9a"
    with_credentials = emulator.url.replace("http://", "http://ops:hunter2@")
    stack = await make_stack(with_credentials, api_keys=(key,))
    url = await start_local_shim(stack.server)
    console = await open_console(browser, url)
    page = console.page
    asked: list[Request] = []
    page.on("request", lambda r: asked.append(r) if "/console/api/" in r.url else None)

    form = page.locator("#key-form")
    await expect(form).to_be_visible()
    await expect(page.locator("#service-status")).to_have_text("key needed")
    await page.locator("#key-input").fill("not-the-key")
    await page.locator("#key-form button").click()
    await expect(page.locator("#key-refused")).to_be_visible()

    await page.locator("#key-input").fill(key)
    await page.locator("#key-form button").click()
    await expect(form).to_be_hidden()
    host = page.locator("article.host")
    await expect(host).to_have_count(1)
    await expect(host).to_have_attribute("data-url", emulator.url)
    await expect(page.locator("#models-table tbody tr[data-model]")).not_to_have_count(0)
    assert await page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == key
    await expect(page.locator("#forget-key")).to_be_visible()

    # the playground goes through the same key
    await page.locator("#pg-message").fill("hello with a key")
    await page.locator("#pg-send").click()
    await expect(page.locator("#pg-answer")).to_have_text(
        answer_text("hello with a key", structured=False), timeout=15000
    )

    html = await page.content()
    for secret in (key, "hunter2", "ops:"):
        assert secret not in html
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        for path in ("/console/api/overview", "/console/api/models"):
            denied = await client.get(path)
            assert denied.status_code == 401
            assert denied.headers["www-authenticate"] == "Bearer"
            body = (await client.get(path, headers={"authorization": f"Bearer {key}"})).text
            assert "hunter2" not in body and key not in body
    sent = [(await r.all_headers()).get("authorization") for r in asked]
    assert f"Bearer {key}" in sent
    # only the answers that asked for the key (the first look, the wrong key)
    assert all("401" in e for e in console.errors), console.errors
    await console.screenshot("key-1280x800")


async def test_console_files_and_json_carry_a_strict_content_security_policy(
    rest: httpx.AsyncClient,
) -> None:
    page = await rest.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    # no inline script or style for the policy to refuse
    assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
    assert " style=" not in page.text and "<style" not in page.text
    for path, media in (
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ):
        asset = await rest.get(path)
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(media)
        assert asset.headers["content-security-policy"] == page.headers["content-security-policy"]
    overview = await rest.get("/console/api/overview")
    assert overview.status_code == 200
    assert overview.headers["cache-control"] == "no-store"
    data = overview.json()
    assert data["service"]["status"] == "healthy"
    assert data["lanes"][0]["name"] == "all"
    assert data["usage"] == {"off": True, "rows": []}  # LLM_LEDGER=false
    assert len(data["history"]) >= 1


async def test_stats_carries_the_recent_history_and_failures_without_prompts(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack()
    # a health check first: the host's catalogue known, an unknown model asks no host
    await stack.stub.Health(pb.HealthRequest())
    await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stack.stub.Chat(
            pb.ChatRequest(message="a-private-prompt", model="no-such-model"),
            metadata=(("x-request-id", "failed-request-7"),),
        )
    emulator.faults.error_status, emulator.faults.times = 500, 1
    with pytest.raises(grpc.aio.AioRpcError):
        await stack.stub.Chat(
            pb.ChatRequest(message="a-private-prompt", model="llama3.2"),
            metadata=(("x-request-id", "failed-request-8"),),
        )
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert sum(b.requests for b in stats.history) == 3
    assert sum(b.failures for b in stats.history) == 2
    # the newest 10-second slice may hold only the failures, when one began between
    assert any(b.p50_latency_ms > 0 for b in stats.history if b.requests > b.failures)
    upstream, unknown = stats.recent_failures  # newest first
    assert (unknown.code, unknown.status, unknown.request_id) == (
        "model_not_found",
        "NOT_FOUND",
        "failed-request-7",
    )
    assert unknown.host == ""  # no host has it: none was asked
    assert unknown.model == "other"  # a name Ollama does not list is never kept
    assert (upstream.code, upstream.status, upstream.request_id) == (
        "ollama_error",
        "INTERNAL",
        "failed-request-8",
    )
    assert (upstream.host, upstream.model) == (emulator.url, "llama3.2")
    assert "a-private-prompt" not in str(stats)
    today = {d.model: d for d in stats.models_today}
    assert (today["llama3.2"].requests, today["llama3.2"].failures) == (2, 1)
    assert today["llama3.2"].response_tokens > 0
    assert [h.url for h in stats.hosts] == [emulator.url]
    assert set(stats.hosts[0].models) == {m["name"] for m in ollama_tags(emulator)}


def _record(outcome: Outcome, n: int = 0) -> RequestRecord:
    return RequestRecord(
        method="Chat",
        model="llama3.2",
        outcome=outcome,
        duration_ms=100.0 + n,
        error_code="ollama_unavailable" if outcome is Outcome.FAILURE else "",
        request_id=f"r{n}",
        host="http://a:11434",
        status="UNAVAILABLE" if outcome is Outcome.FAILURE else "OK",
        prompt_tokens=3,
        response_tokens=5,
    )


def test_history_keeps_fifteen_minutes_the_last_failures_and_the_day() -> None:
    now = [86400.0 * 100 + 3600]  # 01:00 UTC
    history = History(clock=lambda: now[0])
    history.record(_record(Outcome.SUCCESS))
    for n in range(MAX_FAILURES + 5):
        history.record(_record(Outcome.FAILURE, n))
    now[0] += 60
    history.record(_record(Outcome.CANCELLED))
    reply = pb.StatsResponse()
    history.fill(reply)
    assert [b.requests for b in reply.history if b.requests] == [MAX_FAILURES + 6, 1]
    assert len(reply.recent_failures) == MAX_FAILURES
    assert reply.recent_failures[0].request_id == f"r{MAX_FAILURES + 4}"  # newest first
    assert reply.models_today[0].requests == MAX_FAILURES + 7

    now[0] += 15 * 60  # the first minute is out of the window
    reply = pb.StatsResponse()
    history.fill(reply)
    assert len(reply.history) == BUCKETS
    assert sum(b.requests for b in reply.history) == 0
    assert len(reply.recent_failures) == MAX_FAILURES  # the latest failures stay

    now[0] += 86400  # another day
    reply = pb.StatsResponse()
    history.fill(reply)
    assert list(reply.models_today) == []
    assert reply.today_since.seconds == int(now[0] // 86400 * 86400)
