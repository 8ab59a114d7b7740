"""The process a command runs in: distribution (torchrun), device, precision and CPU threads.

``distributed``: the process group, ranks and sharded state; ``process``: ``Process``, set up
once per command (the training scaffold ``train.run.Run`` and every inference command).
"""
