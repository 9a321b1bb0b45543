"""The dispatcher: sends each message's Altegio-visible state to its callback URL.

It is the only part of smsrecon that Altegio sees. The pure pieces (retry arithmetic in
``backoff``, URL choice, SSRF check and token masking in ``urls``) live in small modules of
their own so they can be tested without a network, a clock or a database.
"""
