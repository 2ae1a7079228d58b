"""The BBS compatible Tasks API: protobuf on the wire exactly as Diego's BBS (specs/bbs-tasks.md).

- ``proto/``        taskop's own .proto files (BBS field numbers and types, no gogo options)
- ``generated/``    protoc output from them (``hack/gen-proto``; never edited by hand)
- ``models``        the messages in one namespace
- ``codec``         request bodies → messages, responses → bytes (``error`` only on failure)
- ``errors``        domain ``BBSError`` ⇄ wire ``models.Error``
- ``validation``    BBS's request validation, message for message
- ``convert``       wire ⇄ Task resource (spec and status dicts)
- ``downgrade``     the V3 → V2 task downgrade of the ``.r2`` routes and the r0 event stream
- ``events``        task event payloads for the SSE streams
"""
