"""The Files API, enough for message attachments in both directions.

Uploaded bytes are kept in the state (base64) and served at a public URL, as HubSpot serves
PUBLIC files from its CDN.

Size: a file larger than ``SandboxOptions.files_max_bytes`` is refused with 413 and HubSpot's
error body (category VALIDATION_ERROR); anything up to it is accepted, whatever the web
server's defaults. The default, 2 GiB, is HubSpot's per-file limit for the files tool as we
understand its knowledge base ("Supported file types and sizes",
https://knowledge.hubspot.com/files/supported-file-types); UNVERIFIED: the page was not in the
reference corpus we could read, so the number is configurable and tests set a small one.
Source of the endpoint: https://developers.hubspot.com/docs/api-reference/files-files-v3/guide
(POST /files/v3/files, multipart ``file``, ``options`` JSON with ``access`` required,
``folderId`` or ``folderPath``; 201 with the file).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web

from .contract import FileUploadOptions, check
from .errors import ApiError, bad_request, json_response, not_found, present
from .keys import STATE
from .oauth import require
from .state import SandboxState, iso


def _public_base(request: web.Request) -> str:
    state = request.app[STATE]
    return state.options.public_url or f"{request.scheme}://{request.host}"


def file_view(record: dict[str, Any], base: str) -> dict[str, Any]:
    """The file as HubSpot answers it (hubspot-sdk ``File``): unset fields left out."""
    view: dict[str, Any] = present(record)
    view["url"] = f"{base}/_sandbox/files/{record['id']}/{record['name']}.{record['extension']}"
    return view


def file_attachment(state: SandboxState, file_id: str, base: str) -> dict[str, Any]:
    """A message attachment as the inbox shows it; unknown ids are rejected like HubSpot."""
    record = state.data["files"].get(file_id)
    if record is None:
        raise bad_request(f"File {file_id} does not exist")
    view = file_view(record, base)
    return {
        "type": "FILE",
        "fileId": file_id,
        "name": f"{record['name']}.{record['extension']}",
        "url": view["url"],
        "fileUsageType": "STANDARD",
        "size": record["size"],
        "mimeType": record["_mime"],
    }


async def upload_handler(request: web.Request) -> web.Response:
    require(request, "files")
    state = request.app[STATE]
    if not request.content_type.startswith("multipart/"):
        raise bad_request("Files must be uploaded as multipart/form-data")
    reader = await request.multipart()
    fields: dict[str, str] = {}
    content: bytes | None = None
    filename = "file"
    mime = "application/octet-stream"
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        if part.name == "file":
            filename = part.filename or filename
            mime = part.headers.get("Content-Type", mime)
            content = await _read_limited(part, state.options.files_max_bytes)
        else:
            fields[part.name] = await part.text()
    if content is None:
        raise bad_request("a `file` part is required")
    try:
        options = json.loads(fields.get("options") or "{}")
    except json.JSONDecodeError as exc:
        raise bad_request(f"options is not JSON: {exc}") from exc
    check(FileUploadOptions, options)
    if ("folderId" in fields) == ("folderPath" in fields):
        raise bad_request("Either folderId or folderPath must be provided (not both)")
    name = fields.get("fileName") or filename
    stem, _, ext = name.rpartition(".") if "." in name else (name, "", "")
    if not ext:
        ext = (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
    fid = state.next_id("file")
    ts = iso()
    record = {
        "id": fid,
        "name": stem or name,
        "extension": ext,
        "type": _file_type(mime),
        "size": len(content),
        "access": options["access"],
        "archived": False,
        "path": f"{fields.get('folderPath', '/').rstrip('/')}/{name}",
        "parentFolderId": None,
        "createdAt": ts,
        "updatedAt": ts,
        "encoding": None,
        "_mime": mime,
        "_data": base64.b64encode(content).decode(),
    }
    state.data["files"][fid] = record
    state.mark_dirty()
    return json_response(file_view(record, _public_base(request)), status=201)


async def _read_limited(part: aiohttp.BodyPartReader, limit: int) -> bytes:
    """The part's bytes, or HubSpot's 413 as soon as they pass ``limit`` bytes."""
    data = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        data.extend(chunk)
        if len(data) > limit:
            raise ApiError(
                413,
                f"File exceeds the maximum upload size of {limit} bytes",
                "VALIDATION_ERROR",
                sub_category="FILE_TOO_LARGE",
            )
    return bytes(data)


def _file_type(mime: str) -> str:
    major = mime.split("/")[0]
    return {"image": "IMG", "video": "MOVIE", "audio": "AUDIO", "text": "DOCUMENT"}.get(
        major, "OTHER"
    )


def _record(request: web.Request) -> dict[str, Any]:
    record = request.app[STATE].data["files"].get(request.match_info["file_id"])
    if record is None or record["archived"]:
        raise not_found(f"File {request.match_info['file_id']} not found")
    return record


async def get_handler(request: web.Request) -> web.Response:
    require(request, "files")
    return json_response(file_view(_record(request), _public_base(request)))


# GET .../signed-url query: expirationSeconds (default 3600, at most 6 hours), size (an image
# rendition), upscale. hubspot-sdk ``types/files/file_asset_get_signed_url_params.py``;
# the limits are from HubSpot's reference for the endpoint.
SIGNED_DEFAULT_SECONDS = 3600
SIGNED_MAX_SECONDS = 6 * 3600
SIGNED_SIZES = frozenset({"icon", "medium", "preview", "thumb"})
SIGNING_KEY = web.AppKey("files_signing_key", bytes)


def _signature(key: bytes, file_id: str, expires: int) -> str:
    return hmac.new(key, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()


async def signed_url_handler(request: web.Request) -> web.Response:
    """HubSpot's ``SignedURL``: a URL anyone can use until ``expiresAt`` (hubspot-sdk
    ``types/files/signed_url.py``). Here the URL carries ``expires`` (unix seconds) and an
    HMAC ``signature`` that the download checks; a bad query is HubSpot's 400."""
    require(request, "files")
    record = _record(request)
    q = request.query
    try:
        seconds = int(q.get("expirationSeconds", SIGNED_DEFAULT_SECONDS))
    except ValueError as exc:
        raise bad_request("expirationSeconds must be an integer") from exc
    if not 1 <= seconds <= SIGNED_MAX_SECONDS:
        raise bad_request(f"expirationSeconds must be between 1 and {SIGNED_MAX_SECONDS}")
    if "size" in q and q["size"] not in SIGNED_SIZES:
        raise bad_request(f"size must be one of {sorted(SIGNED_SIZES)}")
    if q.get("upscale", "false") not in ("true", "false"):
        raise bad_request("upscale must be true or false")
    expires = int(time.time()) + seconds
    signature = _signature(request.app[SIGNING_KEY], record["id"], expires)
    view = file_view(record, _public_base(request))
    return json_response(
        {
            "url": f"{view['url']}?expires={expires}&signature={signature}",
            "expiresAt": iso(expires * 1000),
            "name": record["name"],
            "extension": record["extension"],
            "type": record["type"],
            "size": record["size"],
        }
    )


async def download_handler(request: web.Request) -> web.Response:
    """The file's URL, without auth like HubSpot's CDN links; a signed URL (``expires`` and
    ``signature`` in the query) is refused with 403 once expired or when altered."""
    record = _record(request)
    if "signature" in request.query or "expires" in request.query:
        try:
            expires = int(request.query.get("expires", ""))
        except ValueError:
            expires = 0
        good = _signature(request.app[SIGNING_KEY], record["id"], expires)
        if expires < time.time() or not hmac.compare_digest(
            good, request.query.get("signature", "")
        ):
            raise ApiError(403, "This signed URL has expired or is not valid", "FORBIDDEN")
    mime = record["_mime"].split(";")[0]
    return web.Response(body=base64.b64decode(record["_data"]), content_type=mime)


def setup_routes(app: web.Application) -> None:
    for base in ("/files/v3/files", r"/files/{version:\d{4}-\d{2}}/files"):
        app.router.add_post(base, upload_handler)
        app.router.add_get(base + "/{file_id}", get_handler)
        app.router.add_get(base + "/{file_id}/signed-url", signed_url_handler)
    app.router.add_get("/_sandbox/files/{file_id}/{name}", download_handler)
    app[SIGNING_KEY] = secrets.token_bytes(32)
