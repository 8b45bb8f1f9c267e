"""The auxiliary objective of dynamic sparse training (Ullah et al. 2024), beside any head that allows it.

  clusters.py   balanced label clusters from the training data (cached in the workdir)
  objective.py  the Flax wrapper: (1 - alpha) * head loss + alpha * BCE over label clusters
  actions.py    the cosine decay of alpha as a periodic action
  method.py     its config check and how xcs.registry wraps a head with it
"""
