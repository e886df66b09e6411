"""The first proof: the SDK creates, retrieves and continues a stored response."""

from openai import AsyncOpenAI

from tests.upstream import TestUpstream


async def test_create_then_retrieve(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    created = await client.responses.create(model="test-model", input="hello there")
    assert created.status == "completed"
    assert created.output_text == "echo: hello there"
    fetched = await client.responses.retrieve(created.id)
    assert fetched.output_text == "echo: hello there"
    assert upstream.last_request().body["messages"] == [{"role": "user", "content": "hello there"}]
