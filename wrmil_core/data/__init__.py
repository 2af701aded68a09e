"""Stage 0: the raw data root -> the ``words`` table (``ingest``, reading ``metadata_csv`` and checking
``images``), the writer split (``split``), content fingerprints (``fingerprint``) and ``wrmil check``
(``check``)."""
