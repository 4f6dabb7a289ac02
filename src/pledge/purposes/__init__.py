"""Purposes with their lawful basis, and the collection points that collect for them."""
