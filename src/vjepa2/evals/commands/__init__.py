"""The evaluation commands, each a row of ``COMMANDS`` in ``vjepa2.cli`` over the ``evals``
library: ``extract`` (with ``extract_parts``: its ledgers, parts and merge), ``probe_train``,
``probe_eval`` (``probe eval`` and ``classify``), ``anticipate`` and ``physics_eval``.
"""
