"""taskop's BBS Tasks API beside the raw API server (see bench/bbs/README.md)."""
