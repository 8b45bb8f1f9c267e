"""Shared building blocks of the method packages: the model pair, top-k, bias, head wrappers, schedules.

  model.py      XMCModel: an encoder and a head
  topk.py       top-k over label chunks, never a [B, L] array at once
  bias.py       per-label bias helpers and the wide dense layer
  wrappers.py   the intermediate layer a head may sit behind
  schedules.py  learning-rate schedules (warmup + cosine / constant)
  row_optim.py  row-sparse (lazy) Adam / SGD: the lsh head's rows, the bag encoder's table (train.sparse_embedding)
  tree.py       finding a submodule and its variables in a Flax model
"""
