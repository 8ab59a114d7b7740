"""``vjepa2 demo``: the project's commands chained on the built-in world, and their report.

``stages`` (what runs, wired how), ``runner`` (markers, profiles, child processes, resume),
``progress`` (one view over all stages), ``metrics`` and ``surprise`` (metrics.json from the
stages' files, intervals included), ``figures``, ``page``, ``sections`` and ``report``
(report/index.html, offline).
"""
