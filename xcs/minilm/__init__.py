"""The MiniLM text encoder trained end to end on token ids (weights from xcs.text).

  encoder.py  the Flax module and its factory
  method.py   the declaration xcs.registry reads
"""
