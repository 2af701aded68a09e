"""Errors raised for bad user input: each message names the file, row or value and what to do."""

from __future__ import annotations


class WrmilInputError(ValueError):
    """Input data or configuration that wrmil refuses, with a message meant for the user."""
