"""What every face stands on, with no routes of its own.

The faces — ``api/`` (the JSON API), ``web/`` (the pages for people) and ``public/`` (what anyone may
open) — declare their views with the endpoint contract here, resolve the caller here, parse bodies and
answer files here; a face never imports another face.
"""
