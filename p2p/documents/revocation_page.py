"""The printable revocation certificate: a text file and an HTML page with a QR code.

Made at ``pli init`` (and again by ``pli id --revocation-certificate`` if the
files were deleted), written in the home with mode 0600, meant to be printed
and kept away from the computer. Both carry the statement's text form
(``PLI1-REVOKE:...``); the page also draws it as a QR code (segno, alphanumeric
mode, error level M) so that a phone can scan it back into a file.

What lives here: rendering only (strings in, strings out). What must not:
import ``protocol``, write files or talk to the daemon.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

TEXT_NAME = "revocation-certificate.txt"
PAGE_NAME = "revocation-certificate.html"


@dataclass(frozen=True)
class Certificate:
    """What the printed certificate says (all from the verified statement and the profile)."""

    statement: str  # the text form, PLI1-REVOKE:...
    name: str
    fingerprint: str
    made_at: int


def _date(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def render_text(cert: Certificate) -> str:
    return f"""pli — REVOCATION CERTIFICATE / CERTIFICAT DE RÉVOCATION

Identity / Identité : {cert.name}
Fingerprint / Empreinte : {cert.fingerprint}
Made on / Établi le : {_date(cert.made_at)}

What it is for
  If this computer is lost or stolen, or if you stop using this identity,
  this certificate tells your colleagues' pli to stop trusting it: their pli
  refuses to connect to it and no longer accepts documents signed with it.
  From any computer with pli installed (a new laptop is fine), run:
      pli revoke --certificate {TEXT_NAME} --address HOST:PORT
  (one --address per colleague you can reach; colleagues on the same local
  network and your paired colleagues are found on their own).

Keep it safe
  Print this page and keep it away from the computer, with your important
  papers. Anyone holding it can revoke this identity, and a revocation cannot
  be undone: you would then pair again with your colleagues with a new key.

Imprimez ce certificat et gardez-le loin de l'ordinateur. Si l'ordinateur est
perdu ou volé, « pli revoke --certificate » depuis n'importe quel ordinateur
prévient vos confrères de ne plus faire confiance à cette clé.

{cert.statement}
"""


_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="generator" content="pli">
<title>pli — certificat de révocation</title>
<style>
body {{ font-family: sans-serif; max-width: 18cm; margin: 1.5cm auto; color: #111; }}
h1 {{ font-size: 1.3em; }} code {{ word-break: break-all; font-size: .85em; }}
.qr {{ text-align: center; margin: 1.5em 0; }} .small {{ font-size: .85em; color: #333; }}
</style>
</head>
<body>
<h1>Certificat de révocation pli — Revocation certificate</h1>
<p><strong>{name}</strong><br>Empreinte / fingerprint : <code>{fingerprint}</code><br>
Établi le / made on : {date}</p>
<p>Si cet ordinateur est perdu ou volé, ou si vous cessez d'utiliser cette identité :
depuis n'importe quel ordinateur où pli est installé, scannez ce code (ou reprenez le
fichier <code>{text_name}</code>) et lancez <code>pli revoke --certificate FICHIER</code>.
Les pli de vos confrères cesseront de faire confiance à cette clé.</p>
<p>If this computer is lost or stolen: from any computer with pli, run
<code>pli revoke --certificate FILE</code> with this code scanned into FILE.</p>
<p><strong>Imprimez cette page et gardez-la loin de l'ordinateur.</strong> Quiconque la
détient peut révoquer cette identité, et une révocation est définitive.
Print this page and keep it away from the computer.</p>
<div class="qr">{qr}</div>
<p class="small"><code>{statement}</code></p>
</body>
</html>
"""


def render_html(cert: Certificate) -> str:
    import segno  # only when a certificate is drawn

    code = segno.make(cert.statement, error="m", mode="alphanumeric", micro=False)
    qr: str = code.svg_inline(scale=4, border=4, title="pli revocation certificate")
    e = html.escape
    return _PAGE.format(
        name=e(cert.name),
        fingerprint=e(cert.fingerprint),
        date=e(_date(cert.made_at)),
        text_name=TEXT_NAME,
        qr=qr,
        statement=e(cert.statement),
    )
