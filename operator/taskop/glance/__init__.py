"""The Glance v2 Tasks API: a JSON door to the same Tasks (`taskop.glance.app`).

`model`, `listing`, `tasktypes` and `schemas` are pure; `view`, `auth` and `app` are the edges.
"""
