"""The language model side: a small causal LM made here from scratch, or any local LLM folder.

Nothing can be downloaded here, so the default LM is built from a ``transformers`` ``LlamaConfig``
(a few narrow blocks, random weights, trained with the projector) with a byte-level BPE tokenizer
trained with ``tokenizers`` on the training questions and answers (byte-level: any text encodes,
words it never saw included). Its chat template wraps turns in ``<|user|>`` / ``<|assistant|>``
and ends each with the end token. ``load_local_lm`` reads any ``AutoModelForCausalLM`` folder and
its tokenizer and chat template instead (a base model without a template gets ``PLAIN_TEMPLATE``).
Either way the tokenizer gains the video placeholder token ``<video>``; it never reaches the LM's
embedding table (its positions are overwritten by visual tokens), so no embedding is resized.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path

import torch

from vjepa2.checkpoints.files import CheckpointError, refusal_message
from vjepa2.errors import MissingPathError, UserError

VIDEO_TOKEN = "<video>"
EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN, VIDEO_TOKEN, "<|user|>", "<|assistant|>", "<|system|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}Answer: {% endif %}"
)


def require_transformers():
    """The ``transformers`` module, or a UserError saying how to install it."""
    try:
        import transformers
    except ImportError:
        # Both are dependencies of vjepa2: only an environment changed after the install lacks them.
        raise UserError(
            "video QA needs transformers and tokenizers: pip install transformers tokenizers"
        ) from None
    transformers.logging.set_verbosity_error()  # no weight-tying notes or shard progress bars
    transformers.utils.logging.disable_progress_bar()
    return transformers


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on ``texts`` (at most ``vocab_size`` entries, the 256
    bytes and the special tokens included), as a ``transformers`` fast tokenizer."""
    transformers = require_transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_lm(tokenizer, dim: int = 128, layers: int = 2, heads: int = 4, seed: int = 0):
    """A randomly initialised Llama-style causal LM sized to ``tokenizer`` (drawn from ``seed``,
    leaving the global RNG as it was)."""
    transformers = require_transformers()
    if dim % heads:
        raise UserError(f"model.lm_dim {dim} is not a multiple of model.lm_heads {heads}")
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=dim,
        intermediate_size=4 * dim,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transformers.AutoModelForCausalLM.from_config(config)


def load_local_lm(path: str | Path, dtype: torch.dtype = torch.float32):
    """(causal LM, tokenizer) of a local ``transformers`` folder (``config.json``, weights, tokenizer)."""
    transformers = require_transformers()
    path = Path(path)
    if not (path / "config.json").is_file():
        raise MissingPathError(f"{path}: not a transformers model folder (no config.json); "
                               "give a local folder holding the LM's config.json, weights and tokenizer")  # fmt: skip
    try:
        lm = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    except pickle.UnpicklingError as err:  # transformers reads .bin weights with torch's safe loader
        raise CheckpointError(refusal_message(path, str(err))) from None
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{path}: cannot load a causal LM and its tokenizer ({err})") from None
    return lm, prepare_tokenizer(tokenizer)


def prepare_tokenizer(tokenizer):
    """Give a tokenizer what prompts need: the video token, a pad token, a chat template."""
    if VIDEO_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([VIDEO_TOKEN], special_tokens=True)
    if tokenizer.eos_token is None:
        raise UserError("the LM's tokenizer has no end token (eos_token): generation could not stop")
    if tokenizer.pad_token is None:  # only ever at masked positions
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = PLAIN_TEMPLATE
    return tokenizer


def require_peft():
    """The ``peft`` module, or a UserError saying how to install it (LoRA only needs it)."""
    try:
        import peft
    except ImportError:
        raise UserError("model.train_lm=lora needs peft: pip install 'vjepa2[lora]'") from None
    return peft


def add_lora(lm, rank: int = 8, alpha: float = 16.0, dropout: float = 0.05):
    """``lm`` wrapped by peft with LoRA adapters on every linear layer of its blocks (the output
    head excluded); only the adapters train, the LM's own weights stay frozen."""
    peft = require_peft()
    config = peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return peft.get_peft_model(lm, config)


def merge_lora(lm, adapter_dir: str | Path):
    """A causal LM with the LoRA adapters saved in ``adapter_dir`` merged into its weights."""
    peft = require_peft()
    return peft.PeftModel.from_pretrained(lm, adapter_dir).merge_and_unload()


def video_token_id(tokenizer) -> int:
    return tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)


def lm_width(lm) -> int:
    """Embedding width of a causal LM (what the projector must output)."""
    return lm.get_input_embeddings().weight.shape[1]
