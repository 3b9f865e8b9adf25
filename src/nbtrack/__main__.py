"""``python -m nbtrack``: the same as the ``nbtrack`` command."""
from .cli import main

main()
