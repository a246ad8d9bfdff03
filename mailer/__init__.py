"""Outbound mail: compose, render, queue in the outbox, send through a relay."""
