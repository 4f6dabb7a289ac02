"""Pledge: a privacy policy is a list of promises; Pledge is the system that keeps them."""

__version__ = "0.1.0"
