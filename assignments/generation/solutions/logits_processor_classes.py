"""A correct solution in the style of transformers' generation utilities: logits-processor and
warper classes with HF's own names, `__call__(input_ids, scores)` and a processor list applied in
order, written by the student (they reuse the class names, which is allowed: they are the
student's classes, not the library's). The filter flattens any leading dimensions to 2-D rows and
restores them; the nucleus is HF's ascending-sort rule (remove while cumsum <= 1 - top_p)."""

import torch


class LogitsProcessor:
    def __call__(self, input_ids, scores):
        raise NotImplementedError


class LogitsProcessorList(list):
    def __call__(self, input_ids, scores):
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    def __init__(self, penalty: float):
        self.penalty = penalty

    def __call__(self, input_ids, scores):
        score = torch.gather(scores, 1, input_ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return scores.scatter(1, input_ids, score)


class TemperatureLogitsWarper(LogitsProcessor):
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class TopKLogitsWarper(LogitsProcessor):
    def __init__(self, top_k: int, filter_value=-float("inf")):
        self.top_k, self.filter_value = top_k, filter_value

    def __call__(self, input_ids, scores):
        top_k = min(self.top_k, scores.size(-1))
        indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
        return scores.masked_fill(indices_to_remove, self.filter_value)


class TopPLogitsWarper(LogitsProcessor):
    def __init__(self, top_p: float, filter_value=-float("inf"), min_tokens_to_keep: int = 1):
        self.top_p, self.filter_value, self.min_tokens_to_keep = float(top_p), filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs <= (1 - self.top_p)
        sorted_indices_to_remove[..., -self.min_tokens_to_keep:] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        return scores.masked_fill(indices_to_remove, self.filter_value)


def _warpers(temperature=1.0, top_k=0, top_p=1.0):
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k is not None and top_k > 0:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None and top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


def apply_repetition_penalty(logits, input_ids, penalty):
    return RepetitionPenaltyLogitsProcessor(penalty)(input_ids, logits)


def apply_temperature(logits, temperature):
    return TemperatureLogitsWarper(temperature)(None, logits)


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    rows = logits.reshape(-1, logits.shape[-1])
    return _warpers(1.0, top_k, top_p)(None, rows).reshape(logits.shape) if len(_warpers(1.0, top_k, top_p)) else logits.clone()


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    processors = LogitsProcessorList()
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    processors.extend(_warpers(temperature, top_k, top_p))
    return torch.softmax(processors(input_ids, logits), dim=-1)


@torch.no_grad()
def greedy_decode(model, input_ids, max_new_tokens):
    return generate(model, input_ids, max_new_tokens, use_cache=False)


@torch.no_grad()
def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    processors = LogitsProcessorList()
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    warpers = _warpers(temperature, top_k, top_p) if do_sample else LogitsProcessorList()
    generator = torch.Generator().manual_seed(seed) if seed is not None else torch.Generator()
    sequences, past, step_input = input_ids, None, input_ids
    for _ in range(max_new_tokens):
        if use_cache:
            outputs = model(step_input, past_key_values=past, use_cache=True)
            past = outputs.past_key_values
        else:
            outputs = model(sequences)
        scores = processors(sequences, outputs.logits[:, -1, :])
        if do_sample:
            probs = torch.softmax(warpers(sequences, scores), dim=-1)
            next_tokens = torch.multinomial(probs, num_samples=1, generator=generator)
        else:
            next_tokens = torch.argmax(scores, dim=-1, keepdim=True)
        sequences = torch.cat([sequences, next_tokens], dim=-1)
        step_input = next_tokens
    return sequences
