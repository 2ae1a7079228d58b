"""Generated protobuf code for the BBS compat API. DO NOT EDIT.

Regenerate with `hack/gen-proto` from `taskop/bbs/proto/*.proto`; `hack/gen-proto --check` (run by
tests/unit/bbs/test_generated_drift.py) fails when this package is out of date.
Import messages through `taskop.bbs.models`.
"""
