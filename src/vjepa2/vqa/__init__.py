"""Video question answering: a frozen V-JEPA 2 encoder, a projector, any ``transformers`` causal LM.

- ``data``: question sets (JSONL), the reader that reports and skips bad lines, answer normalization;
- ``features``: each video encoded once by the frozen encoder (cached on disk);
- ``projector``: encoder tokens -> visual tokens (2-layer MLP per token, or an attentive pooler);
- ``lm``: the small LM and tokenizer made here, or a local LLM folder;
- ``prompts``: chat prompts with the video placeholder, left-padded batches;
- ``model``: ``VQAModel`` (the placeholder splice, the answer-only loss);
- ``pipeline``: ``VideoQA``, the whole model saved and loaded as one folder;
- ``inference``: choices scored by likelihood, answers generated;
- ``train`` / ``evaluate`` / ``ask``: the ``vjepa2 vqa`` commands.

The built-in world's questions are made by ``vjepa2 worlds make-vqa`` (``worlds.vqa_set``).
"""
