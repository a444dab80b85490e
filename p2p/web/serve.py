"""Starting the page next to the daemon and its local API (``pli daemon`` calls
``start_page`` before ``api.server.run_daemon``).

The page listens on ``web_listen``: loopback only and plain HTTP by default
(``storage/config.py`` refuses anything else), or, with ``web_tls = true``, HTTPS
on any address, with its certificate (``storage/webcert.py``), the names it
answers at (``page_names``: the Host allowlist and the certificate's names) and a
sign-in by name and password. If its port is taken, the daemon still runs
(letters matter more than the page): the reason goes to the log and ``pli open``
says it in words.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

from p2p.daemon.core import Daemon
from p2p.errors import PliError
from p2p.storage.config import Config
from p2p.web.api import Api
from p2p.web.app import build_app
from p2p.web.guard import ALLOWED_HOSTS

if TYPE_CHECKING:  # cryptography's x509 (~1.5 MB): imported only when web_tls is on
    from p2p.storage import webcert

log = logging.getLogger("pli.web")


def page_names(config: Config) -> list[str]:
    """Every name and address the page answers at: loopback, the one it listens on (or,
    on every address, this computer's name and IPv4 addresses), and ``web_names``."""
    names = ["localhost", "127.0.0.1", "::1"]
    host = config.web_host
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        unspecified = False
    if unspecified:
        import ifaddr  # only for a page served on every address

        machine = socket.gethostname()
        names += [machine, f"{machine}.local"]
        names += [str(ip.ip) for a in ifaddr.get_adapters() for ip in a.ips if ip.is_IPv4]
    elif host not in names:
        names.append(host)
    names += list(config.web_names)
    return list(dict.fromkeys(name.lower() for name in names))


def _hosts(names: list[str]) -> frozenset[str]:
    """The allowlist of Host names: IPv6 addresses are written in brackets there."""
    return frozenset({*ALLOWED_HOSTS, *(f"[{n}]" if ":" in n else n for n in names)})


def _tls_context(certificate: webcert.PageCertificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate.certificate, certificate.private_key)
    return context


async def start_page(daemon: Daemon) -> web.AppRunner | None:
    """Serve the page on ``web_listen``; None (and the reason noted) if it cannot."""
    config = daemon.config
    links = daemon.web_links
    context = None
    names = page_names(config)
    if config.web_tls:
        from p2p.storage import webcert

        try:
            certificate = await asyncio.to_thread(
                webcert.ensure,
                config.home,
                names,
                own_cert=config.web_certificate,
                own_key=config.web_private_key,
            )
            context = await asyncio.to_thread(_tls_context, certificate)
        except (PliError, OSError, ssl.SSLError) as exc:
            links.failure = f"its TLS certificate could not be used ({exc})"
            log.warning("the practice's page is not served: %s", links.failure)
            return None
        links.tls_fingerprint = certificate.fingerprint
    hosts = _hosts(names) if context else None
    app = await asyncio.to_thread(build_app, Api(config.api_socket), links, hosts=hosts)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.web_host, config.web_port, ssl_context=context)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        links.failure = (
            f"its port {config.web_host}:{config.web_port} could not be opened ({exc.strerror})"
        )
        log.warning("the practice's page is not served: %s", links.failure)
        return None
    port = runner.addresses[0][1] if runner.addresses else config.web_port
    links.address = _local_address(config.web_host, port)
    links.listen = f"{_bracketed(config.web_host)}:{port}"
    scheme = "https" if context else "http"
    log.info("the practice's page is at %s://%s/ (open it with `pli open`)", scheme, links.listen)
    if context is not None:
        log.info("its TLS certificate's SHA-256 fingerprint is %s", links.tls_fingerprint)
    return runner


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _local_address(host: str, port: int) -> str:
    """Where a browser on this computer reaches the page (``pli open``'s link)."""
    try:
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
    except ValueError:
        pass
    return f"{_bracketed(host)}:{port}"
