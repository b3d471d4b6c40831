"""Mutant: NFKD instead of NFD (the ligature "ﬁ" becomes "fi", full-width letters ASCII)."""
import unicodedata


def whitespace_tokenize(text):
    """Runs basic whitespace cleaning and splitting on a piece of text."""
    text = text.strip()
    if not text:
        return []
    return text.split()


def _is_punctuation(char):
    cp = ord(char)
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return True
    return unicodedata.category(char).startswith("P")


class BasicTokenizer:
    def __init__(self, do_lower_case=True, strip_accents=True):
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents

    def tokenize(self, text):
        orig_tokens = whitespace_tokenize(text)
        split_tokens = []
        for token in orig_tokens:
            if self.do_lower_case:
                token = token.lower()
            if self.strip_accents:
                token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token))
        return whitespace_tokenize(" ".join(split_tokens))

    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFKD", text)
        output = []
        for char in text:
            if unicodedata.category(char) == "Mn":
                continue
            output.append(char)
        return "".join(output)

    def _run_split_on_punc(self, text):
        chars = list(text)
        i = 0
        start_new_word = True
        output = []
        while i < len(chars):
            char = chars[i]
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
            i += 1
        return ["".join(x) for x in output]


class WordpieceTokenizer:
    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text):
        output_tokens = []
        for token in whitespace_tokenize(text) if " " in text else [text]:
            chars = list(token)
            if len(chars) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            is_bad = False
            start = 0
            sub_tokens = []
            while start < len(chars):
                end = len(chars)
                cur_substr = None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur_substr = substr
                        break
                    end -= 1
                if cur_substr is None:
                    is_bad = True
                    break
                sub_tokens.append(cur_substr)
                start = end
            if is_bad:
                output_tokens.append(self.unk_token)
            else:
                output_tokens.extend(sub_tokens)
        return output_tokens


def basic_tokenize(text):
    return BasicTokenizer().tokenize(text)


def wordpiece(word, vocab, unk_token="[UNK]", max_chars=100):
    if not word:
        return []
    return WordpieceTokenizer(vocab, unk_token, max_chars).tokenize(word)


def tokenize(text, vocab):
    return [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]


def truncate_sequences(ids, pair_ids, num_tokens_to_remove):
    """longest_first, as PreTrainedTokenizerBase.truncate_sequences."""
    for _ in range(num_tokens_to_remove):
        if pair_ids is None or len(ids) > len(pair_ids):
            ids = ids[:-1]
        else:
            pair_ids = pair_ids[:-1]
    return ids, pair_ids


def build_inputs_with_special_tokens(cls, sep, a, b=None):
    if b is None:
        return [cls] + a + [sep]
    return [cls] + a + [sep] + b + [sep]


def create_token_type_ids_from_sequences(a, b=None):
    if b is None:
        return [0] * (len(a) + 2)
    return [0] * (len(a) + 2) + [1] * (len(b) + 1)


def encode(text, vocab, text_pair=None, max_length=None, padding=False):
    if padding and max_length is None:
        raise ValueError("padding=True requires max_length")
    a = [vocab[t] for t in tokenize(text, vocab)]
    b = None if text_pair is None else [vocab[t] for t in tokenize(text_pair, vocab)]
    num_special = 2 if b is None else 3
    if max_length is not None:
        if max_length < num_special:
            raise ValueError(f"max_length={max_length} is smaller than the {num_special} special tokens")
        total = len(a) + (len(b) if b is not None else 0) + num_special
        if total > max_length:
            a, b = truncate_sequences(a, b, total - max_length)
    input_ids = build_inputs_with_special_tokens(vocab["[CLS]"], vocab["[SEP]"], a, b)
    token_type_ids = create_token_type_ids_from_sequences(a, b)
    attention_mask = [1] * len(input_ids)
    if padding:
        difference = max_length - len(input_ids)
        input_ids = input_ids + [vocab["[PAD]"]] * difference
        token_type_ids = token_type_ids + [0] * difference
        attention_mask = attention_mask + [0] * difference
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}


def encode_batch(texts, vocab, text_pairs=None, max_length=None):
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError("text_pairs must have as many entries as texts")
    encoded = [encode(t, vocab, None if text_pairs is None else text_pairs[i], max_length)
               for i, t in enumerate(texts)]
    longest = max((len(e["input_ids"]) for e in encoded), default=0)
    batch = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    for e in encoded:
        pad = longest - len(e["input_ids"])
        batch["input_ids"].append(e["input_ids"] + [vocab["[PAD]"]] * pad)
        batch["token_type_ids"].append(e["token_type_ids"] + [0] * pad)
        batch["attention_mask"].append(e["attention_mask"] + [0] * pad)
    return batch
