"""``pli open``: the practice's page in the browser, through a one-time login link.

The link comes from the daemon's local API (``POST /v1/web/link``), so only the
user who runs pli can get one; it opens the page once and is then spent, and the
page keeps the person signed in with its own session cookie.
"""

from __future__ import annotations

import click

from p2p.cli.app import State


@click.command(name="open")
@click.option("--no-browser", is_flag=True, help="Print the link instead of opening a browser.")
@click.pass_obj
def open_page(state: State, no_browser: bool) -> None:
    """Open the practice's page (inbox, letters, sending) in the browser.

    The link works once, within two minutes; run `pli open` again for another.
    With --no-browser --json it prints {"url": ...} for scripts.
    """
    answer = state.client.post("/v1/web/link", {})
    url, fingerprint = str(answer["url"]), answer.get("tls_fingerprint")
    out = state.out
    if fingerprint and not out.json:
        out.line(f"The page's certificate (SHA-256): {fingerprint}")
        out.line("Check that the browser shows the same before you sign in.")
    if not no_browser:
        import webbrowser

        opened = webbrowser.open(url)
        if out.json:
            out.emit({"url": url, "opened": opened, "tls_fingerprint": fingerprint})
        elif opened:
            out.line("The page is opening in your browser.")
        else:
            out.line(f"No browser could be opened here. Open this link (it works once): {url}")
        return
    if out.json:
        out.emit({"url": url, "tls_fingerprint": fingerprint})
    elif fingerprint:
        out.line(f"Open the page and sign in with your name and password: {url}")
    else:
        out.line(f"Open this link in a browser on this computer (it works once): {url}")


def page_lines(page: object) -> list[tuple[str, str]]:
    """``pli status``'s lines: where the page is, and its certificate on the network."""
    if not isinstance(page, dict):
        return []  # an older daemon
    if not page.get("url"):
        return [("Page", f"not served: {page.get('failure') or 'see the log'}")]
    lines = [("Page", f"{page.get('listen')} ({page.get('sign_in')} sign-in)")]
    if page.get("tls_fingerprint"):
        lines.append(("Page TLS", f"SHA-256 {page['tls_fingerprint']}"))
    return lines
