"""Run the hakeeper command: ``python -m hakeeper``."""

from hakeeper.cli.main import main

main()
