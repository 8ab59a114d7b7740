"""``vjepa2 demo``: the project's commands chained on the built-in world, and their report.

``stages`` (what runs, wired how), ``runner`` (markers, child processes, resume), ``progress``
(one view over all stages), ``metrics`` (metrics.json from the stages' files), ``figures`` and
``report`` (report/index.html, offline).
"""
