"""Exact gradient updates for very large sparse targets (Vincent, de Brébisson, Bouthillier 2015).

  layer.py   the pure functions: factored state, exact minibatch / per-example updates, stabilisation
  head.py    the Flax head over that state and its update / stabilise functions
  method.py  the declaration xcs.registry reads
"""
