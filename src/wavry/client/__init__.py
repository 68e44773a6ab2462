"""Wavry client: receive the stream, decode, present in an SDL2 window, send input back."""
