"""The dense head: a full [d, L] linear layer, label-sharded on a device mesh (method.py declares it).

  head.py     DenseHead and its factory
  sharded.py  its loss and top-k under shard_map with the label axis on the mesh's `model` devices
"""
