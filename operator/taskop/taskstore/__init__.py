"""The taskstore API: external workers lease tasks, and change many at once all-or-nothing.

`model` and `plan` are pure; `view`, `intents` and `app` are the edges.
"""
