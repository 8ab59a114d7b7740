"""Evaluations of frozen encoders: the library here, the commands in ``commands``.

Library (imported by the commands, ``vqa`` and ``demo``):
- ``features``: encoders to evaluate, the probes' clips and views, the feature extractor and cache;
- ``probes``: the feature spec of a probe, its clips, class names, a saved probe at work;
  ``classification``: accuracies, the confusion matrix; ``head_grid``: many heads trained at once;
- ``anticipation``: the EK100 protocol's context clips, tokens, probe, focal loss and recall@k;
- ``physics``: surprise curves, their metrics, the data set readers and plots;
- ``intervals``: 95% intervals (Wilson, Newcombe, bootstrap).
"""
