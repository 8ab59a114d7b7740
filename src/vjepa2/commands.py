"""The commands of the ``vjepa2`` command line, one row each: where its config and its run
function live (imported by name only when the command runs, so ``--help`` stays fast and
importing this table loads no torch), and its one-line help. ``vjepa2.cli`` parses arguments
against it.
"""

from __future__ import annotations

# command -> (module, config class, run function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "extract": (
        "vjepa2.evals.commands.extract",
        "ExtractConfig",
        "run_extract",
        "encode videos or images with a frozen encoder and write features (.npy or .safetensors)",
    ),
    "shards make": (
        "vjepa2.data.shards.writer",
        "MakeShardsConfig",
        "run_make_shards",
        "pack folders / CSV indexes of videos into WebDataset tar shards with a manifest",
    ),
    "convert": (
        "vjepa2.checkpoints.convert",
        "ConvertConfig",
        "run_convert",
        "convert a checkpoint (reference .pt, transformers dir, ours) to our format or transformers",
    ),
    "weights list": (
        "vjepa2.weights.command",
        "WeightsListConfig",
        "run_weights_list",
        "the released checkpoints (V-JEPA 2, 2-AC, 2.1, probes, hub repos) and the names that load them",
    ),
    "weights download": (
        "vjepa2.weights.command",
        "WeightsDownloadConfig",
        "run_weights_download",
        "download released checkpoints by name into the cache (resumable, SHA-256 recorded)",
    ),
    "weights path": (
        "vjepa2.weights.command",
        "WeightsNamesConfig",
        "run_weights_path",
        "where a released checkpoint is cached, or where to put it offline (never downloads)",
    ),
    "weights verify": (
        "vjepa2.weights.command",
        "WeightsNamesConfig",
        "run_weights_verify",
        "check cached checkpoints against their recorded or pinned SHA-256",
    ),
    "pretrain": (
        "vjepa2.train.pretrain",
        "PretrainConfig",
        "run_pretrain",
        "self-supervised V-JEPA 2 pretraining (single process or under torchrun)",
    ),
    "plot-log": (
        "vjepa2.train.log",
        "PlotLogConfig",
        "run_plot_log",
        "draw the curves of a JSONL/CSV training log to PNG",
    ),
    "probe train": (
        "vjepa2.evals.commands.probe_train",
        "ProbeTrainConfig",
        "run_probe_train",
        "train attentive probes on a frozen encoder over a learning-rate x weight-decay grid",
    ),
    "probe eval": (
        "vjepa2.evals.commands.probe_eval",
        "ProbeEvalConfig",
        "run_probe_eval",
        "multi-clip x multi-view evaluation of a trained probe: accuracy, confusion matrix",
    ),
    "classify": (
        "vjepa2.evals.commands.probe_eval",
        "ClassifyConfig",
        "run_classify",
        "top-k labels of a video with a trained probe",
    ),
    "anticipate": (
        "vjepa2.evals.commands.anticipate",
        "AnticipationConfig",
        "run_anticipation",
        "action anticipation (EK100 protocol): train and evaluate verb/noun/action probes",
    ),
    "physics-eval": (
        "vjepa2.evals.commands.physics_eval",
        "PhysicsEvalConfig",
        "run_physics_eval",
        "intuitive physics: surprise on possible / impossible video pairs (IntPhys 2, IntPhys, synthetic, CSV)",
    ),
    "train-ac": (
        "vjepa2.train.ac",
        "TrainACConfig",
        "run_train_ac",
        "train the action-conditioned world model (V-JEPA 2-AC) on trajectories",
    ),
    "plan-eval": (
        "vjepa2.planning.evaluate",
        "PlanEvalConfig",
        "run_plan_eval",
        "goal-image planning with CEM + MPC in an environment: success rate, timing, plots",
    ),
    "plan": (
        "vjepa2.planning.drive",
        "PlanConfig",
        "run_plan",
        "one planning step for a robot loop: observation + goal image in, next actions out as JSON",
    ),
    "worlds make-videos": (
        "vjepa2.worlds.scenes",
        "MakeVideosConfig",
        "run_make_videos",
        "generate synthetic physics videos with probe labels and a CSV index",
    ),
    "worlds make-physics-pairs": (
        "vjepa2.worlds.physics_pairs",
        "MakePairsConfig",
        "run_make_pairs",
        "generate intuitive-physics pairs (possible video and its impossible twin)",
    ),
    "worlds make-vqa": (
        "vjepa2.worlds.vqa_set",
        "MakeVQAConfig",
        "run_make_vqa",
        "generate a video QA set (JSONL) from the built-in world's ground truth, with minimal pairs",
    ),
    "vqa train": (
        "vjepa2.vqa.train",
        "VQATrainConfig",
        "run_vqa_train",
        "video QA: train a projector (and a small LM) from a frozen encoder into a causal LM",
    ),
    "vqa eval": (
        "vjepa2.vqa.evaluate",
        "VQAEvalConfig",
        "run_vqa_eval",
        "video QA accuracy per question type, paired accuracy, results.json",
    ),
    "vqa ask": (
        "vjepa2.vqa.ask",
        "VQAAskConfig",
        "run_vqa_ask",
        "answer a question about a video with a VQA model (streamed)",
    ),
    "bench": (
        "vjepa2.runtime.bench_command",
        "BenchConfig",
        "run_bench",
        "this machine in a minute: matmul peak per precision, encoder clips/s, the precision auto uses",
    ),
    "demo": (
        "vjepa2.demo.runner",
        "DemoConfig",
        "run_demo",
        "the whole system on the built-in world, one stage after another, then an HTML report",
    ),
    "episodes to-clips": (
        "vjepa2.data.episode_clips",
        "EpisodeClipsConfig",
        "run_episode_clips",
        "write trajectory episodes' frames as videos, a `pretrain` source (encoders on your env's frames)",
    ),
    "episodes to-lerobot": (
        "vjepa2.data.lerobot.convert",
        "ToLeRobotConfig",
        "run_to_lerobot",
        "write trajectory episodes as a LeRobot dataset (v3.0 or v2.1), to publish or read elsewhere",
    ),
    "episodes from-lerobot": (
        "vjepa2.data.lerobot.convert",
        "FromLeRobotConfig",
        "run_from_lerobot",
        "read a LeRobot dataset (folder or hub id, v3.0 or v2.1) into trajectory episodes",
    ),
    "worlds collect": (
        "vjepa2.worlds.collect",
        "CollectConfig",
        "run_collect",
        "collect trajectories (frames, actions, states) in a synthetic environment",
    ),
}
