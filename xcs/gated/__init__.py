"""Tree-gated conditional computation (Cho & Bengio 2014): a layer the encoders may include.

  layer.py   GatedSpec, the tree / table layer, the dense baselines of equal FLOPs or parameters
  method.py  the check of config.model.encoder.gated (the encoders' declarations call it)
"""
