"""Starting the page next to the daemon and its local API (``pli daemon`` calls
``start_page`` before ``api.server.run_daemon``).

The page listens on ``web_listen`` (loopback only, ``storage/config.py`` refuses
anything else). If its port is taken, the daemon still runs (letters matter more
than the page): the reason goes to the log and ``pli open`` says it in words.
"""

from __future__ import annotations

import logging

from aiohttp import web

from p2p.daemon.core import Daemon
from p2p.web.api import Api
from p2p.web.app import build_app

log = logging.getLogger("pli.web")


async def start_page(daemon: Daemon) -> web.AppRunner | None:
    """Serve the page on ``web_listen``; None (and the reason noted) if it cannot."""
    config = daemon.config
    links = daemon.web_links
    runner = web.AppRunner(
        build_app(Api(config.api_socket), links), access_log=None, handle_signals=False
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.web_host, config.web_port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        links.failure = (
            f"its port {config.web_host}:{config.web_port} could not be opened ({exc.strerror})"
        )
        log.warning("the practice's page is not served: %s", links.failure)
        return None
    port = runner.addresses[0][1] if runner.addresses else config.web_port
    host = f"[{config.web_host}]" if ":" in config.web_host else config.web_host
    links.address = f"{host}:{port}"
    log.info("the practice's page is at http://%s/ (open it with `pli open`)", links.address)
    return runner
