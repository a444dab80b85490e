"""The folders shared with the practice software (issue 13, docs/folders.md).

``outgoing.py`` is the outbox folder: a document dropped there (with a JSON sidecar,
or an HPRIM-headed ``.hpr``/``.txt``, or an IHE XDM zip) is claimed durably, queued
once, then moved to ``sent/`` or ``errors/``. ``incoming.py`` is the inbox folder:
each received document written there as its files plus HPRIM, XDM and FHIR.
``service.py`` runs both on a timer, their blocking work on worker threads;
``request.py`` turns what was dropped into a checked request, ``stability.py``
says when a file is complete.
"""
