"""robustgate: robustness contracts for compressed image classifiers, run as pytest items."""

__version__ = "0.1.0"
