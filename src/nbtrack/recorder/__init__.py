"""One run's lifecycle: analyse the cell, watch it run, capture, write to the spool."""
