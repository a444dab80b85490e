"""``pli mailbox server-config``: one ready nats-server configuration for a practice group.

Each member is a NATS account of its own, holding one user (the practice's nkey)
and at most one JetStream stream, its mailbox, capturing ``pli.box.<box>.*``.
For each other member S the account *exports* ``pli.box.<box>.<box of S>`` as a
service to S's account alone, and S's account *imports* it: a member can publish
into the others' mailboxes (and get the server's acknowledgement back) under its
own box only — so the recipient's stream can cap what each sender leaves there
(its messages share one subject) — but it sees nothing of another account: not
its stream, its consumers nor its messages. For pairing through the mailbox each
account also exports ``pli.pair.<box>.>`` as a stream that every other member
imports: a member publishes there under its own box only, and hears the others'
(core NATS messages, never stored; ``rendezvous.py``). A client without one of the listed nkeys
is not let in: there is no anonymous user.

Limits written here are enforced by the server: the message size, the storage
each member's mailbox may take (``--quota``), one stream and two consumers per
account. The retention time and the per-sender cap are settings of the stream,
which the member's own daemon creates with pli's values (``connection.py``
``stream_config``); docs/mailbox.md lists them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from p2p.errors import BadInput

#: The mailbox subject of a member: ``pli.box.<recipient box>.<sender box>``.
SUBJECT_ROOT = "pli.box"
#: Pairing through the mailbox: ``pli.pair.<box>.<rendezvous>[.<session>]``, core NATS only.
PAIRING_ROOT = "pli.pair"
#: Above a mailbox message (``protocol.mailbox.MAX_FRAME``, a 1 MiB chunk and its header).
MAX_PAYLOAD = 2 * 1024 * 1024
#: What the server buffers for one client: a fetch of ``FETCH_BATCH`` 1 MiB chunks and
#: the acknowledgements of a sender's ``PUBLISH_WINDOW`` fit with room, or the server
#: would cut a busy reader as a slow consumer.
MAX_PENDING = "64MB"
DEFAULT_LISTEN = "0.0.0.0:4222"
DEFAULT_STORE_DIR = "/var/lib/nats/pli"
DEFAULT_QUOTA_GB = 10
_NKEY = re.compile(r"U[A-Z2-7]{55}")
_BOX = re.compile(r"[0-9a-f]{20}")


@dataclass(frozen=True)
class Member:
    """A practice of the group: its public nkey and the mailbox label derived from its identity."""

    nkey: str
    box: str

    @classmethod
    def parse(cls, text: str) -> Member:
        """``U…:box`` as printed by ``pli mailbox key``."""
        nkey, _, box = text.strip().partition(":")
        if not _NKEY.fullmatch(nkey) or not _BOX.fullmatch(box) or not _valid_nkey(nkey):
            raise BadInput(
                f"“{text[:80]}” is not a member key: ask the practice to run `pli mailbox key` "
                "and copy the whole line (it starts with U and has a colon)."
            )
        return cls(nkey, box)

    def text(self) -> str:
        return f"{self.nkey}:{self.box}"

    @property
    def account(self) -> str:
        return f"PLI_{self.box}"


def _valid_nkey(text: str) -> bool:
    import nkeys

    try:
        nkeys.KeyPair(public_key=text.encode()).public_key  # noqa: B018 - checks the CRC
    except nkeys.NkeysError:
        return False
    return True


def subject(box: str, sender: str = "*") -> str:
    """What ``sender`` publishes into ``box``'s mailbox (``*``: every sender, for the stream)."""
    return f"{SUBJECT_ROOT}.{box}.{sender}"


def pairing_subject(box: str) -> str:
    """What a member publishes when pairing through the mailbox (``rendezvous.py``)."""
    return f"{PAIRING_ROOT}.{box}.>"


@dataclass(frozen=True)
class Cluster:
    """A node of a 3-node group: its name, its route port and its two neighbours."""

    name: str
    listen: str
    routes: tuple[str, ...]


def render(
    members: list[Member],
    *,
    listen: str = DEFAULT_LISTEN,
    store_dir: str = DEFAULT_STORE_DIR,
    quota_gb: int = DEFAULT_QUOTA_GB,
    server_name: str = "pli-mailbox",
    cluster: Cluster | None = None,
) -> str:
    """The whole configuration file, as text (nats-server 2.9 or later)."""
    if len({m.box for m in members}) != len(members) or len(members) < 1:
        raise BadInput("Name each member once (at least one), each with its own key.")
    if not 1 <= quota_gb <= 100_000:
        raise BadInput("The quota is a number of gigabytes between 1 and 100000.")
    q = json.dumps  # a quoted, escaped string in the config's syntax
    lines = [
        "# nats-server configuration for a pli mailbox, written by `pli mailbox server-config`.",
        "# Members: " + ", ".join(m.box for m in members),
        f"server_name: {q(server_name)}",
        f"listen: {q(listen)}",
        f"max_payload: {MAX_PAYLOAD}",
        f"max_pending: {MAX_PENDING}",
        'write_deadline: "10s"',
        "jetstream {",
        f"  store_dir: {q(store_dir)}",
        f"  max_file_store: {quota_gb * len(members)}G",
        "  max_memory_store: 64MB",
        "}",
        "accounts {",
    ]
    for member in members:
        lines += _account(member, [m for m in members if m != member], quota_gb)
    lines.append("}")
    if cluster is not None:
        lines += [
            "cluster {",
            f"  name: {q(cluster.name)}",
            f"  listen: {q(cluster.listen)}",
            "  routes: [" + ", ".join(q(r) for r in cluster.routes) + "]",
            "}",
        ]
    return "\n".join(lines) + "\n"


def _account(member: Member, others: list[Member], quota_gb: int) -> list[str]:
    q = json.dumps
    # Pairing: a member publishes under its own box only, and hears every member's
    # pairing subjects (a stream export each, imported by all the others).
    pairing = pairing_subject(member.box)
    # Mailboxes: a member publishes as itself only; each other member's mailbox takes
    # it through an export to this account alone (the recipient caps each sender).
    mailboxes = subject("*", member.box)
    permissions = (
        f'{{ publish: {{ allow: [{q(mailboxes)}, {q(pairing)}, "$JS.API.>", "$JS.ACK.>"] }}, '
        f'subscribe: {{ allow: ["_INBOX.>", {q(PAIRING_ROOT + ".>")}] }} }}'
    )
    lines = [
        f"  {member.account}: {{",
        f"    jetstream: {{ max_mem: 0, max_file: {quota_gb}G, max_streams: 1, max_consumers: 2 }}",
        f"    users: [ {{ nkey: {q(member.nkey)}, permissions: {permissions} }} ]",
        "    exports: [",
        f"      {{ stream: {q(pairing)} }}",
    ]
    for o in others:
        lines.append(
            f"      {{ service: {q(subject(member.box, o.box))}, accounts: [{q(o.account)}] }}"
        )
    lines += ["    ]", "    imports: ["]
    for o in others:
        account, theirs = q(o.account), q(subject(o.box, member.box))
        lines += [
            f"      {{ service: {{ account: {account}, subject: {theirs} }} }}",
            f"      {{ stream: {{ account: {account}, subject: {q(pairing_subject(o.box))} }} }}",
        ]
    return [*lines, "    ]", "  }"]
