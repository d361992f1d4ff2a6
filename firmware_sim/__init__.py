"""Simulated sensors for Spotter: scenarios, traces and (later) peripherals on a virtual radio.

Everything here speaks bytes through ``monitor.codecs``: one truth for the protocols.
"""
