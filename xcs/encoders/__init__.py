"""The feature encoders: tf-idf embedding bag, dense MLP, and the two combined (method.py declares them).

  mlp.py        ResidualStack, BagEncoder (sparse feat_idx/feat_val), DenseEncoder (dense x)
  dense_bag.py  dense features projected and a tf-idf bag, summed or concatenated
"""
