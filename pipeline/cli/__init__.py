"""The ``smsrecon`` command line."""
