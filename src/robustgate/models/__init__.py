"""The fp32 reference model: architecture lookup, weights, training, and the normalising wrapper."""
