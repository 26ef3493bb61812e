"""LangChain's ``ChatOllama`` and ``OllamaEmbeddings`` through the service's Ollama face,
unchanged but for the URL: the same answers as from Ollama (the emulator) directly,
streamed or not, tool calls included, and the key taken from ``user:key@`` in the URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import ollama
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.tools import tool
from langchain_ollama import ChatOllama, OllamaEmbeddings

from ollama_emulator import Emulator
from tests.conftest import RestStarter, Stack, StackFactory

Closing = Callable[..., Any]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
async def built() -> AsyncIterator[Closing]:
    """Builds LangChain models and closes their Ollama clients at the end."""
    made: list[Any] = []

    def build(kind: type[Any], **kwargs: Any) -> Any:
        model = kind(**kwargs)
        made.append(model)
        return model

    yield build
    for model in made:
        model._client.close()
        await model._async_client.close()


@pytest.fixture
async def face(stack: Stack, serve_rest: RestStarter) -> str:
    return await serve_rest(stack)


async def test_chat_invoke_and_stream_match_ollama(
    face: str, emulator: Emulator, built: Closing
) -> None:
    ours = built(ChatOllama, model="gpt-oss:20b", base_url=face, temperature=0.1, num_ctx=4096)
    theirs = built(ChatOllama, model="gpt-oss:20b", base_url=emulator.url, temperature=0.1)
    question = [("system", "Be brief."), ("human", "why is the sky blue?")]
    mine, direct = await ours.ainvoke(question), await theirs.ainvoke(question)
    assert isinstance(mine, AIMessage) and isinstance(direct, AIMessage)
    assert mine.content == direct.content
    assert mine.additional_kwargs.get("reasoning_content") == direct.additional_kwargs.get(
        "reasoning_content"
    )
    assert mine.usage_metadata == direct.usage_metadata
    assert mine.response_metadata["done_reason"] == "stop"
    chunks = [c async for c in ours.astream(question)]
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert "".join(str(c.content) for c in chunks) == direct.content
    sent = emulator.requests_to("/api/chat")[0].body
    assert sent is not None and sent["options"]["num_ctx"] == 4096


async def test_tool_calls_through_langchain(face: str, emulator: Emulator, built: Closing) -> None:
    ours = built(ChatOllama, model="llama3.2", base_url=face).bind_tools([get_weather])
    theirs = built(ChatOllama, model="llama3.2", base_url=emulator.url).bind_tools([get_weather])
    mine = await ours.ainvoke("what is the weather in Paris?")
    direct = await theirs.ainvoke("what is the weather in Paris?")
    assert isinstance(mine, AIMessage) and isinstance(direct, AIMessage)
    assert [(c["name"], c["args"]) for c in mine.tool_calls] == [
        (c["name"], c["args"]) for c in direct.tool_calls
    ]
    assert mine.tool_calls[0]["name"] == "get_weather"


async def test_embeddings_match_ollama(face: str, emulator: Emulator, built: Closing) -> None:
    ours = built(OllamaEmbeddings, model="bge-m3", base_url=face)
    theirs = built(OllamaEmbeddings, model="bge-m3", base_url=emulator.url)
    mine = await ours.aembed_documents(["first text", "second text"])
    direct = await theirs.aembed_documents(["first text", "second text"])
    assert len(mine) == 2
    for got, want in zip(mine, direct, strict=True):
        assert got == pytest.approx(want, abs=1e-7)


async def test_the_key_in_the_url(
    make_stack: StackFactory, serve_rest: RestStarter, built: Closing
) -> None:
    stack = await make_stack(api_keys=("k-lang",))
    base = await serve_rest(stack)
    with_key = base.replace("http://", "http://rag:k-lang@")
    answer = await built(ChatOllama, model="llama3.2", base_url=with_key).ainvoke("hello")
    assert answer.content == "Echo: hello"
    wrong = built(ChatOllama, model="llama3.2", base_url=base.replace("http://", "http://rag:no@"))
    with pytest.raises(ollama.ResponseError) as err:
        await wrong.ainvoke("hello")
    assert err.value.status_code == 401
