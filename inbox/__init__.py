"""Inbound mail: the SMTP/LMTP listener and the classification of replies."""
