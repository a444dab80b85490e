"""A daemon with discovery, mailboxes, folders and web_tls off does not import their libraries.

Each costs resident memory for the daemon's whole life (issue 10, measured
with ``python -X importtime`` and VmRSS): zeroconf ~3.6 MB, nats-py ~2.3 MB,
cryptography's x509 ~1.5 MB, fhir.resources ~1.5 MB. A fresh interpreter
(``python -c``) builds the ``Daemon`` from such a home and imports what
``pli daemon`` imports to run it (the process, the local API, the page); no
network is opened. The same interpreter then imports each feature's module to
show the library names checked are the ones those features bring in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: The feature's module (imported only when the feature is on) -> its library.
FEATURES = {
    "p2p.net.discovery": "zeroconf",
    "p2p.services.mailbox.connection": "nats",
    "p2p.storage.webcert": "cryptography.x509",
}
#: Imported only when a FHIR bundle is written (``documents/fhir.py``).
FHIR = "fhir.resources"

SCRIPT = """
import importlib, json, sys
from pathlib import Path
from p2p.daemon import harness
import p2p.cli.daemon, p2p.daemon.process, p2p.api.server, p2p.web.serve

daemon = harness.open_daemon(Path(sys.argv[1]), "Dr Lazy")  # TEST_SETTINGS: discovery off
features = json.loads(sys.argv[2])
before = sorted(m for m in [*features.values(), sys.argv[3]] if m in sys.modules)
for module in features:
    importlib.import_module(module)
after = sorted(m for m in features.values() if m in sys.modules)
print(json.dumps({"before": before, "after": after}))
"""


def test_features_off_import_none_of_their_libraries(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "home"), json.dumps(FEATURES), FHIR],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["before"] == []
    assert found["after"] == sorted(FEATURES.values())
