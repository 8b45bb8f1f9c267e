"""The bottom layer: the protocols every method package implements and the user-error type.

Nothing here imports another part of xcs, so every layer above may import it.
"""
