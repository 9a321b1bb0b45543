"""The read-only finance dashboard: server-rendered pages over the reporting views.

See docs/dashboard.md. ``app`` builds the aiohttp application, ``auth`` decides who may
look, ``filters`` reads the URL, ``queries`` reads the views, ``pages`` renders, and
``downloads`` writes the reports' files.
"""
