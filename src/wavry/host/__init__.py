"""The host: capture, encode and stream a screen over RIFT; inject the client's input."""
