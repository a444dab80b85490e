"""The practice's own page: inbox, documents, compose, served on a loopback port.

The page is a client of the local API like the ``pli`` command (``api.py`` talks to
``api.sock``): it never reaches into the daemon's services, so it can do only what
the API allows. It is started next to the API by ``pli daemon`` (``serve.py``) on
``web_listen`` (default 127.0.0.1:7718, loopback only) and guarded by ``guard.py``:
a one-time login link (``pli open``), an HttpOnly SameSite=Strict session, a Host
allowlist, Origin and CSRF checks, a strict CSP. Pages are rendered on the server
(jinja2, ``templates/``) with autoescaping; ``static/app.js`` adds live updates,
drag and drop and upload progress, and the pages work without it.
"""
