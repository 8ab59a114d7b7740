"""Checkpoint reading, writing and conversion: every file layout of weights, in one room.

- ``files``: safe loads (``weights_only``) that name the file, atomic saves;
- ``keymaps``: key-map tables between our module names and the reference / transformers layouts;
- ``shapes``: architectures read off weights (``HeadRule`` head counts), strict module building;
- ``reference``, ``hf``, ``ours``: the reference ``.pt``, ``transformers`` and our own layouts;
- ``training``: the training checkpoint schema (old schemas included) and exact-resume state;
- ``probes``: attentive probes in every layout;
- ``world_models``: the folders of ``vjepa2 train-ac`` (weights, spec, latent statistics);
- ``loading``: ``load`` (any layout, or a released checkpoint's name -> ``VJEPA2``) and the
  random-model factory;
- ``convert``: the ``vjepa2 convert`` command.

Imports go down only: this package uses ``models`` (architectures), ``weights`` (names to
files) and ``errors``, and nothing above it; ``models`` never imports it: ``VJEPA2.save`` calls
the writer that ``ours`` hands the class, imported here so that any use of this package sets it.
"""

from vjepa2.checkpoints import ours  # noqa: F401 - gives VJEPA2.save its writer
