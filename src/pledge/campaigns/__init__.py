"""Campaigns: a message to everyone the gate allows for a purpose, channel and topic."""
