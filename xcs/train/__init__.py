"""Training: the loop, the train state and its jitted functions."""
