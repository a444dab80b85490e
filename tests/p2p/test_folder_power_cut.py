"""What a power cut may bring back when a removal or a rename was not fsync'd.

The folder path fsyncs what keeps a document from being lost or sent twice, and
not the rest (docs/folders.md, "fsyncs"). These tests put the folders in each
state a power cut may leave that the skipped fsyncs allow, and check that the
next start finishes the work without a second letter or a wrong state file.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from p2p.services.folders.outgoing import Claim, OutboxFolder, Unit


def claimed(out: Path) -> tuple[OutboxFolder, Claim]:
    folder = OutboxFolder(out, 0)
    folder.create()
    (out / "lettre.pdf").write_bytes(b"%PDF-1.4\n")
    (out / "lettre.pdf.json").write_text('{"colleague": "Dr Bob Durand"}', encoding="utf-8")
    doc_id = "ab" * 16
    claim = Claim(
        doc_id=doc_id,
        peer_id="cd" * 32,
        colleague="Dr Bob Durand",
        kind="letter",
        metadata={"subject": "Avis"},
        originals=["lettre.pdf", "lettre.pdf.json"],
        attachments=[("lettre.pdf", str(folder.work / doc_id / "lettre.pdf"), "application/pdf")],
        xdm=False,
        claimed_at=1,
    )
    return folder, folder.claim(Unit(out / "lettre.pdf", out / "lettre.pdf.json"), claim)


def test_a_finished_claim_brought_back_keeps_its_state_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder, claim = claimed(out)
    state = folder.finish(claim)
    folder.settle(state, "delivered", 1234, None)
    # The claim's removal was lost (it is not fsync'd): the claim is back.
    data = json.dumps(asdict(claim)).encode()
    (folder.claims / f"{claim.doc_id}.json").write_bytes(data)
    restarted = OutboxFolder(out, 0)
    restarted.create()
    (again,) = restarted.pending_claims()
    assert restarted.finish(again) == state  # the outbox holds it: only finished
    assert sorted(p.name for p in (out / "sent").iterdir()) == [
        "lettre.pdf",
        "lettre.pdf.json",
        "lettre.pdf.pli.json",
    ]
    fields = json.loads(state.read_text(encoding="utf-8"))
    assert (fields["state"], fields["receipt_time"]) == ("delivered", 1234)
    assert list(folder.claims.iterdir()) == []
    assert list(folder.work.iterdir()) == []


def test_a_settled_state_whose_rename_was_lost_is_settled_again(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder, claim = claimed(out)
    state = folder.finish(claim)
    queued = state.read_bytes()
    folder.settle(state, "delivered", 1234, None)
    state.write_bytes(queued)  # the rename over it did not survive: "queued" again
    restarted = OutboxFolder(out, 0)
    restarted.create()
    assert restarted.waiting() == {claim.doc_id: (claim.peer_id, state)}  # settled at start
