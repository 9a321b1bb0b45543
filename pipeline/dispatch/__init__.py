"""The dispatcher: sends each message's Altegio-visible state to its callback URL.

It is the only part of smsrecon that Altegio sees. The pure pieces (retry arithmetic in
``backoff``, URL choice, SSRF check and token masking in ``urls``) live in small modules of
their own so they can be tested without a network, a clock or a database. A run reads as
three parts: ``model`` (the plain types), ``dispatcher`` (the plumbing: claimer, senders,
record writer) and ``delivery`` (the rules: route, post, bisect, settle).
"""
