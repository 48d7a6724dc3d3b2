"""The faces anyone may open, without an account: consumer verification and the GS1 resolver
(``verify``), OGC API – Features over the production areas (``ogc``)."""
