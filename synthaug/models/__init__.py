"""Generator families: one Keras model and its estimator each."""
