"""IPython glue."""
