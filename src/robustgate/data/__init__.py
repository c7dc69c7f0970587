"""Datasets as labelled uint8 tensors at the model's input size: built-in digits,
ImageFolder trees, Office-31, and sets derived from others by corruption."""
