"""Scale out with JAX itself: a device mesh, sharding rules, label-sharded head math, multi-host init.

  mesh.py         config.mesh -> Mesh (axes `data`, `model`), parameter/state/batch NamedShardings
  sharded_head.py the dense head's loss and top-k under shard_map (label axis on `model`)
  distributed.py  jax.distributed.initialize from launch.py flags (gloo collectives on CPU)
"""
