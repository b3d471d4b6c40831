"""Assignment: WordPiece tokenization and BERT inputs.

Implement the five functions below exactly as the handout specifies (and remove the raise
statements). Do not import any tokenizer library (transformers, tokenizers, sentencepiece, ...);
the standard library is all you need. Save the file as tokenization.py and submit it.

DEMO_VOCAB is a tiny vocabulary to try your code on (the handout's examples use it). The grader
uses its own, larger vocabularies, so look every id up in `vocab`, never hard-code one.
"""
import unicodedata

DEMO_VOCAB = {token: i for i, token in enumerate("""
[PAD] [UNK] [CLS] [SEP] [MASK] the a is cat sat on mat dog . , ! ? ' - un ##aff ##able ##ord
##a ##b ##l ##e token ##ization ##izer ##ize ##s ##ing ##ed play ##er hug ##ging face how are
you i am fine em ##bed ##ding ##d
""".split())}


def basic_tokenize(text: str) -> list[str]:
    """Lowercase, strip accents, split on whitespace, split off punctuation (handout, part 1)."""
    # YOUR CODE
    raise NotImplementedError("basic_tokenize")


def wordpiece(word: str, vocab: dict, unk_token: str = "[UNK]", max_chars: int = 100) -> list[str]:
    """Greedy longest-match-first WordPiece with '##' continuations (handout, part 2)."""
    # YOUR CODE
    raise NotImplementedError("wordpiece")


def tokenize(text: str, vocab: dict) -> list[str]:
    """basic_tokenize, then wordpiece on every word."""
    # YOUR CODE
    raise NotImplementedError("tokenize")


def encode(text: str, vocab: dict, text_pair: str | None = None, max_length: int | None = None,
           padding: bool = False) -> dict:
    """[CLS] A [SEP] (B [SEP]), truncation, padding -> input_ids, token_type_ids, attention_mask."""
    # YOUR CODE
    raise NotImplementedError("encode")


def encode_batch(texts: list, vocab: dict, text_pairs: list | None = None, max_length: int | None = None) -> dict:
    """encode() every row, then pad all rows to the longest one."""
    # YOUR CODE
    raise NotImplementedError("encode_batch")


if __name__ == "__main__":
    # Try it: python tokenization.py
    print(tokenize("Unaffordable tokenization!", DEMO_VOCAB))
    # expected: ['un', '##aff', '##ord', '##able', 'token', '##ization', '!']
    print(encode("How are you?", DEMO_VOCAB, "I am fine.", max_length=12, padding=True))
