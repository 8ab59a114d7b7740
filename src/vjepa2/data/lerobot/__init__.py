"""LeRobot datasets (format v3.0 and v2.1), read and written without the ``lerobot`` package.

``format`` (the layout: info.json, episode tables, stats), ``read`` (frame tables with pyarrow,
camera frames with PyAV), ``hub`` (a folder or a Hugging Face hub id), ``trajectories`` (episodes
as world-model trajectories, for ``train-ac data.source=[lerobot:...]``), ``write`` (datasets
written), ``convert`` (``vjepa2 episodes to-lerobot`` / ``from-lerobot``).
"""
