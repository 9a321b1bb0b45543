"""``python -m pipeline.smsc``: run the SMSC simulator in the foreground."""

from pipeline.smsc.command import main

main()
