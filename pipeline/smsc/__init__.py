"""An SMPP 3.4 SMSC simulator, to try a Kannel gateway in front of smsrecon without an
operator: ``python -m pipeline.smsc`` (docs/kannel.md); the Kannel end-to-end test uses it."""
