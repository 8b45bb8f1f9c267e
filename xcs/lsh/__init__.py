"""LSH candidate retrieval for the output layer (Vijayanarasimhan et al. 2014; WTA/DWTA; SLIDE; MONGOOSE).

  hashing.py   hash families (WTA, DWTA, SimHash) and multiprobe keys
  tables.py    bucket tables, insertion, candidate selection
  head.py      the functional head: state, candidate loss, rehash, top-k
  layer.py     the Flax module (LSHHead) and its update
  actions.py   rehash / drift check / rebuild as periodic actions
  recall.py    candidate recall at prediction (extra test metrics)
  method.py    the declaration xcs.registry reads
"""
