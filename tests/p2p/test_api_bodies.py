"""The local API's request bodies (``p2p/api/bodies.py``): the sentences a caller gets.

Each wrong body is refused with the sentence the hand-written checks gave before the
bodies became typed structs, and a field the daemon does not know is refused rather
than silently ignored (a typo such as ``"Yes": true`` used to do nothing).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.api import bodies
from p2p.api.bodies import (
    Acceptance,
    Body,
    Confirmation,
    FingerprintRequest,
    Integrated,
    Invitation,
    NewDocument,
    NewMailbox,
    NewPeer,
    NewToken,
    PassphraseChange,
    PeerName,
    ProfileChange,
    RequestAnswer,
    RevocationRequest,
    SignIn,
    decode,
)
from p2p.errors import BadInput

EVERY_BODY: list[type[Body]] = [
    NewPeer,
    NewDocument,
    Invitation,
    Acceptance,
    Confirmation,
    FingerprintRequest,
    RequestAnswer,
    RevocationRequest,
    PeerName,
    NewMailbox,
    ProfileChange,
    PassphraseChange,
    Integrated,
    NewToken,
    SignIn,
]


@pytest.mark.parametrize(
    ("kind", "data", "sentence"),
    [
        (NewDocument, b"{not json", "The request body must be JSON."),
        (NewDocument, b"", "The request body must be JSON."),
        (NewDocument, b"[1, 2]", "The request body must be a JSON object."),
        (NewDocument, b"{}", "Say who to send to: “to” is a peer or a list of peers."),
        (NewDocument, b'{"to": 3}', "Say who to send to: “to” is a peer or a list of peers."),
        (NewDocument, b'{"to": [3]}', "Say who to send to: “to” is a peer or a list of peers."),
        (NewDocument, b'{"to": "a", "files": 5}', "Give at least one file to send."),
        (
            NewDocument,
            b'{"to": "a", "files": [5]}',
            "Each file is an object with a “path” or an “upload”.",
        ),
        (NewDocument, b'{"to": "a", "files": [{"upload": 5}]}', "“upload” must be text."),
        (NewDocument, b'{"to": "a", "files": [{"path": 1}]}', "“path” must be text."),
        (NewDocument, b'{"to": "a", "files": [{"path": "/x", "type": 1}]}', "“type” must be text."),
        (NewDocument, b'{"to": "a", "kind": 1}', "“kind” must be text."),
        (NewDocument, b'{"to": "a", "metadata": []}', "“metadata” maps names to text."),
        (NewDocument, b'{"to": "a", "metadata": {"a": 1}}', "“metadata” maps names to text."),
        (NewPeer, b"{}", "“card” must be text."),
        (NewPeer, b'{"card": "x", "address": 7}', "“address” must be text."),
        (Invitation, b'{"expires": "10m"}', "An invitation lasts between 10 seconds and 24 hours."),
        (Invitation, b'{"expires": true}', "An invitation lasts between 10 seconds and 24 hours."),
        (Invitation, b'{"expires": null}', "An invitation lasts between 10 seconds and 24 hours."),
        (Invitation, b'{"yes": "yes"}', "“yes” must be true or false."),
        (Confirmation, b'{"yes": null}', "“yes” must be true or false."),
        (Acceptance, b'{"code": 12}', "“code” must be text."),
        (FingerprintRequest, b'{"fingerprint": "x", "address": 5}', "“address” must be text."),
        (RequestAnswer, b"{}", "“peer” must be text."),
        (PeerName, b"{}", "Give the new name as text in “name”."),
        (PeerName, b'{"name": ["Dr A"]}', "Give the new name as text in “name”."),
        (RevocationRequest, b'{"addresses": "a:1"}', "“addresses” is a list of host:port."),
        (RevocationRequest, b'{"addresses": [1]}', "“addresses” is a list of host:port."),
        (ProfileChange, b'{"rpps": 10003456789}', "“rpps” must be text."),
        (
            ProfileChange,
            b'{"seq": 9}',
            "“seq” is not a field of this request (docs/api.md lists them).",
        ),
        (PassphraseChange, b'{"new": ["a"]}', "“new” must be text."),
        (
            Integrated,
            b'{"error_code": "902"}',
            "Give “error_code” as a number, e.g. 902 (unknown patient), or leave it out.",
        ),
        (
            NewToken,
            b'{"scopes": ["send"]}',
            "Name the token after the software it is for, in “name” (e.g. “LGC”).",
        ),
        (
            NewToken,
            b'{"name": "LGC"}',
            'Give the token\'s scopes as a list of text, e.g. ["send", "inbox:read"].',
        ),
        (
            NewToken,
            b'{"name": "LGC", "scopes": "send"}',
            'Give the token\'s scopes as a list of text, e.g. ["send", "inbox:read"].',
        ),
        (
            NewToken,
            b'{"name": "LGC", "scopes": ["send"], "expires_at": "soon"}',
            "“expires_at” is a time in seconds since 1970 (UTC), or null.",
        ),
        (SignIn, b'{"name": "secretariat"}', "“password” must be text."),
    ],
)
def test_a_wrong_body_gets_the_sentence_it_always_got(
    kind: type[Body], data: bytes, sentence: str
) -> None:
    with pytest.raises(BadInput) as refused:
        decode(data, kind)
    assert refused.value.message == sentence


@pytest.mark.parametrize("body", [b"{}", b'{"path": "/x", "upload": "0123"}'])
def test_a_file_is_a_path_or_an_upload(tmp_path: Path, body: bytes) -> None:
    """Neither, or both: the same sentence, from the documents handler."""
    from p2p.api.bodies import File
    from p2p.api.documents import attachment
    from p2p.storage.uploads import Uploads

    with pytest.raises(BadInput) as refused:
        attachment(Uploads(tmp_path, 10), decode(body, File))
    assert refused.value.message == "Each file is an object with a “path” or an “upload”."
    upload = attachment(Uploads(tmp_path, 10), decode(b'{"upload": "' + b"a" * 32 + b'"}', File))
    assert upload.path == tmp_path / ("a" * 32)


def test_an_unknown_field_is_refused_by_name() -> None:
    with pytest.raises(BadInput, match="“Yes” is not a field of this request"):
        decode(b'{"yes": false, "Yes": true}', Confirmation)


def test_good_bodies_decode_with_their_defaults() -> None:
    document = decode(b'{"to": "Dr Bob", "files": [{"path": "/tmp/a.pdf"}]}', NewDocument)
    assert (document.to, document.files[0].path, document.kind) == ("Dr Bob", "/tmp/a.pdf", None)
    assert decode(b"{}", Invitation).expires is msgspec.UNSET
    assert decode(b'{"expires": 90}', Invitation).expires == 90.0
    assert decode(b'{"peer": "x", "yes": 0}', RequestAnswer).yes == 0  # only false refuses


@pytest.mark.parametrize("kind", EVERY_BODY)
def test_every_required_field_is_text(kind: type[Body]) -> None:
    """``bodies._sentence`` says "must be text" for a missing field: keep that true."""
    for field in msgspec.structs.fields(kind):
        if field.required:
            assert field.type is str or kind.messages.get(field.name), (kind, field.name)


def test_every_body_is_listed_here() -> None:
    found = {v for v in vars(bodies).values() if isinstance(v, type) and issubclass(v, Body)}
    assert found - {Body, bodies.File} == set(EVERY_BODY)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_refused_in_words(data: bytes) -> None:
    for kind in EVERY_BODY:
        outcome = decode_or_refusal(data, kind)
        assert isinstance(outcome, kind) or (isinstance(outcome, BadInput) and str(outcome))


def decode_or_refusal(data: bytes, kind: type[Body]) -> Body | BadInput:
    """The decoded body, or the refusal; any other exception escapes and fails the test."""
    try:
        return decode(data, kind)
    except BadInput as refusal:
        return refusal
