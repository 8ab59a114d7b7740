"""Released weights by name: the table, the download cache, the Hugging Face hub.

- ``table``: every released checkpoint (V-JEPA 2.0, 2-AC, 2.1, the attentive probes, the
  ``transformers`` repositories), under the names a user would guess;
- ``cache``: where files live (``$VJEPA2_CACHE``), the switches (``VJEPA2_OFFLINE``,
  ``VJEPA2_MIRROR``), SHA-256 sidecars checked on every load;
- ``http``: resumable downloads (HTTP ranges, retries, a progress bar, the size checked);
- ``hf``: Hugging Face repositories through ``huggingface_hub`` and its cache;
- ``fetch``: a name made into a local path (``local_weights``), used by ``vjepa2.load``;
- ``command``: ``vjepa2 weights list | download | path | verify``.

This room sits below ``checkpoints``: it knows files and names, never what a file holds.
"""
