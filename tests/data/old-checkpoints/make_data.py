# How the data of this folder was made (see README.md); run here with commit 3dac37a.
# Data for the old-checkpoint tests: 8 clips of a moving square (pretrain) and 6 episodes (train-ac).
import numpy as np

from vjepa2.data.episodes import write_episode, write_index
from vjepa2.data.video import write_video

rng = np.random.default_rng(0)
for i in range(8):
    frames = np.zeros((8, 40, 40, 3), np.uint8)
    y, x = rng.integers(0, 20, 2)
    for t in range(8):
        frames[t, y + t : y + t + 10, x + 2 * t : x + 2 * t + 10] = rng.integers(60, 255, 3)
    write_video(f"videos/clip{i}.mp4", frames, fps=4)
rng = np.random.default_rng(0)
folders = []
for i in range(6):
    actions = rng.uniform(-1, 1, (6, 2)).astype(np.float32)
    states = np.cumsum(np.concatenate([[[12.0, 12.0]], actions[:-1] * 3]), axis=0).astype(np.float32)
    frames = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    for t, (x, y) in enumerate(states.astype(int)):
        frames[t, y : y + 6, x : x + 6] = 255
    folders.append(write_episode(f"episodes/ep{i}", frames, actions, states, fps=10))
write_index("episodes", folders)
