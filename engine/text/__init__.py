"""Serialization of item features into text (Eq. 2) and the text encoder (Eq. 3)."""
