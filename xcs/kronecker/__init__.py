"""Asynchronous SGD on Kronecker-structured data (Song & Ye 2023): the encoder on factors, never a ⊗ b.

  layer.py   the shifted-ReLU layer on the factors, its exact steps and the encoder module
  method.py  the declaration xcs.registry reads (the async trainer itself is xcs.train.async_step)
"""
