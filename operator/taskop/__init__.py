"""taskop: run one-off tasks on Kubernetes, with a Diego BBS compatible Tasks API."""

__version__ = "0.1.0"
