"""ibkr-nb: research to paper execution on Interactive Brokers, inside Jupyter notebooks."""

__version__ = "0.1.0"
