"""The HTTP call of the openai assistant backend: one POST to /chat/completions, under a timeout."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from gateway.pipeline.assistant.llm import BackendError


class OpenAIChatClient:
    """An OpenAI-compatible chat-completions endpoint (OpenAI, Azure-style proxies, vLLM,
    Ollama, llama.cpp server): base_url ends before /chat/completions."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.timeout = timeout

    async def complete(self, payload: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            async with asyncio.timeout(self.timeout):
                # a session per call: the assistant makes a few calls a minute at most
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(self.url, json=payload, headers=headers) as resp,
                ):
                    text = await resp.text()
                    if resp.status != 200:
                        raise BackendError(f"HTTP {resp.status}: {text[:200]}")
        except aiohttp.ClientError as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}") from None
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise BackendError("the response is not JSON") from None
        if not isinstance(body, dict):
            raise BackendError("the response is not a JSON object")
        return body
