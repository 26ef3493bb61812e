"""Images the OpenAI face fetches for a caller: ``http(s)`` ``image_url`` parts.

Fetching a URL a caller names, from inside the network, is a request-forgery hole:
only hosts LLM_IMAGE_URL_HOSTS names are fetched, without redirects (a redirect could
lead anywhere), proxies or credentials from the environment, within a timeout and a
size limit, and only when the answer says it is an image. Anything else is a 400
naming the parameter.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from rest_shim.openai_chat import ChatCompletionRequest
from rest_shim.openai_mapping import RequestError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = 10.0


async def fetch_images(parsed: ChatCompletionRequest, allowed: tuple[str, ...]) -> None:
    """Adds the fetched images to their turns, after the turn's data: images."""
    if not parsed.image_urls:
        return
    for image in parsed.image_urls:
        host = (urlsplit(image.url).hostname or "").lower()
        if host not in allowed:
            raise RequestError(
                image.param,
                f"image URLs are fetched only from the hosts LLM_IMAGE_URL_HOSTS names "
                f"({host or 'no host'} is not one); send the image as a data: URL",
            )
    async with httpx.AsyncClient(
        timeout=FETCH_TIMEOUT, follow_redirects=False, trust_env=False
    ) as client:
        for image in parsed.image_urls:
            data = await _download(client, image.url, image.param)
            parsed.rpc.messages[image.turn].images.append(data)


async def _download(client: httpx.AsyncClient, url: str, param: str) -> bytes:
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise RequestError(param, f"fetching the image answered {response.status_code}")
            kind = response.headers.get("content-type", "")
            if not kind.startswith("image/"):
                raise RequestError(param, f"the URL is not an image (content-type {kind!r})")
            parts: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise RequestError(param, f"the image is over {MAX_IMAGE_BYTES} bytes")
                parts.append(chunk)
    except httpx.HTTPError as exc:
        raise RequestError(param, f"the image could not be fetched: {exc}") from None
    return b"".join(parts)
