"""The gateway's HTTP listener: health and readiness now; webhooks and metrics join it later."""

from __future__ import annotations

from aiohttp import web

from gateway.store.db import Store
from gateway.store.queries import status

STORE: web.AppKey[Store] = web.AppKey("store", Store)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    try:
        await store.write(lambda db: db.execute("SELECT 1").fetchone())
    except Exception as exc:  # not ready is an answer, not a crash
        return web.json_response({"status": "unavailable", "store": str(exc)}, status=503)
    return web.json_response({"status": "ok", "store": "writable"})


async def status_view(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STORE].read(status))


def create_app(store: Store) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[STORE] = store
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_view)
    return app
