"""The mailboxes a signed card lists: absent (an older card), none, or up to eight URLs.

The field is read after the signature, so the property test signs each body it
makes: whatever a paired peer puts there, the card parses within the bounds or
is refused with the protocol's remote error.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import LocalIdentity, MalformedMessage, ProfileCard, RemoteProtocolError, codec
from protocol.identity import LABEL_CARD
from protocol.limits import MAX_CARD_MAILBOXES, MAX_MAILBOX_URL

ME = LocalIdentity.from_secrets(
    bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)), not_after=2_000_000_000
)
ONE = "nats://mailbox.msp-exemple.fr:4222"
CLUSTER = "nats://n1.example:4222,nats://n2.example:4222,nats://n3.example:4222"


def signed_body(extra: dict[str, object]) -> bytes:
    """A card body with ``extra`` keys, signed by ME as a daemon would sign it."""
    body = codec.pack(
        {
            "v": 1,
            "id": ME.public.key,
            "doc_key": ME.doc_public,
            "seq": 4,
            "name": "Dr Martin",
            "profession": "",
            "rpps": "",
            "practice": "",
            "addresses": [],
            **extra,
        }
    )
    return codec.pack({"body": body, "sig": ME.identity.sign(LABEL_CARD, body)})


def test_absent_none_and_some_round_trip() -> None:
    for mailboxes in (None, (), (ONE,), (ONE, CLUSTER)):
        card = ME.card(4, name="Dr Martin", mailboxes=mailboxes)
        assert ProfileCard.from_wire(card.sign(ME.identity)).mailboxes == mailboxes


def test_an_older_card_says_nothing_and_is_signed_as_before() -> None:
    """A card without mailboxes is the same bytes as before the field existed."""
    older = signed_body({})
    assert ProfileCard.from_wire(older).mailboxes is None
    assert ME.card(4, name="Dr Martin").sign(ME.identity) == older


def test_the_list_is_bounded() -> None:
    at_most = tuple(f"nats://n{i}.example:4222" for i in range(MAX_CARD_MAILBOXES))
    assert ProfileCard.from_wire(signed_body({"mailboxes": list(at_most)})).mailboxes == at_most
    for bad in (
        [*at_most, "nats://one-more:4222"],
        ["nats://" + "a" * MAX_MAILBOX_URL],
        ["nats://a:4222\nnats://b:4222"],
        [b"nats://a:4222"],
        "nats://a:4222",
        [["nats://a:4222"]],
    ):
        with pytest.raises(MalformedMessage):
            ProfileCard.from_wire(signed_body({"mailboxes": bad}))
    with pytest.raises(MalformedMessage):
        ME.card(4, name="Dr Martin", mailboxes=(*at_most, ONE))


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=1100) | st.binary(max_size=64),
    lambda inner: st.lists(inner, max_size=10) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(_VALUES)
def test_any_signed_value_parses_within_bounds_or_is_refused(value: object) -> None:
    try:
        card = ProfileCard.from_wire(signed_body({"mailboxes": value}))
    except RemoteProtocolError:
        return
    assert card.mailboxes is None or len(card.mailboxes) <= MAX_CARD_MAILBOXES
    for url in card.mailboxes or ():
        assert isinstance(url, str)
        assert len(url) <= MAX_MAILBOX_URL


@given(st.binary(max_size=600))
def test_any_bytes_in_the_field_parse_or_are_refused(data: bytes) -> None:
    try:
        card = ProfileCard.from_wire(signed_body({"mailboxes": [data.decode("latin-1")]}))
    except RemoteProtocolError:
        return
    assert card.mailboxes == (data.decode("latin-1"),)
