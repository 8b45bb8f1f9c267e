"""Dynamic sparse training of the classifier (Ullah et al. 2024, "Navigating Extremes").

  fanin     the fixed fan-in layer: chunked forward and custom-VJP backward, index sampling
  rewire    prune and regrow (SET, RigL), the cosine drop schedule, optimizer-moment reset
  clusters  balanced label clusters for the auxiliary objective (cached in the workdir)
  actions   the periodic actions (rewiring, decay of the auxiliary weight) the loop runs

The head itself is xcs.sparsity.head (registry name `sparse`); the intermediate layer and
the auxiliary objective are head wrappers in xcs.nn.wrappers.
"""
