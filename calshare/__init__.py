"""calshare: email-driven calendar sharing on open standards."""

__version__ = "0.1.0"
