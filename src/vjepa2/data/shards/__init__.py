"""WebDataset tar shards of videos: made by ``writer`` (``vjepa2 shards make``), described by
``manifest``, streamed by ``reader`` (local disk, http(s), object storage through fsspec; every
remote read through ``remote``: timeouts, retries), copied for indexed reading by ``local``."""
