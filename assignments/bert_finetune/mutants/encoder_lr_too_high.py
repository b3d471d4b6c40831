"""Mutant: the pretrained encoder is fine-tuned with a learning rate of 5e-3 (a head-sized rate), which destroys what it learned in pre-training (catastrophic forgetting)."""

import random
import time

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

MAX_LENGTH = 32


class SentimentClassifier(nn.Module):
    def __init__(self, model_dir):
        super().__init__()
        self.encoder = AutoModel.from_pretrained(model_dir)
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(self.encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.head(self.dropout(pooled))


class Predictor:
    def __init__(self, model, tokenizer, device, val_indices, val_accuracy, val_f1):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.val_indices = val_indices
        self.val_accuracy = val_accuracy
        self.val_f1 = val_f1

    @torch.no_grad()
    def predict(self, texts):
        self.model.eval()
        out = []
        for start in range(0, len(texts), 64):
            batch = self.tokenizer(list(texts[start:start + 64]), padding=True, truncation=True,
                                   max_length=MAX_LENGTH, return_tensors="pt").to(self.device)
            out.extend(self.model(batch["input_ids"], batch["attention_mask"]).argmax(-1).tolist())
        return [int(x) for x in out]


def accuracy_f1(pred, gold):
    """Accuracy and macro-averaged F1 over the two classes."""
    acc = sum(p == g for p, g in zip(pred, gold)) / max(len(gold), 1)
    f1s = []
    for c in (0, 1):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        fp = sum(p == c and g != c for p, g in zip(pred, gold))
        fn = sum(p != c and g == c for p, g in zip(pred, gold))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return acc, sum(f1s) / 2


def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    start = time.process_time()
    deadline = start + 0.8 * time_budget_s
    random.seed(seed)
    torch.manual_seed(seed)

    # stratified 80/20 split: the validation examples are never trained on
    by_label = {0: [], 1: []}
    for i, y in enumerate(train_labels):
        by_label[int(y)].append(i)
    val_idx, fit_idx = [], []
    for idx in by_label.values():
        random.shuffle(idx)
        cut = max(1, round(0.2 * len(idx)))
        val_idx += idx[:cut]
        fit_idx += idx[cut:]
    val_idx.sort()

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = SentimentClassifier(model_dir).to(device)
    loss_fn = nn.CrossEntropyLoss()

    def encode(idx):
        return tokenizer([train_texts[i] for i in idx], padding=True, truncation=True,
                         max_length=MAX_LENGTH, return_tensors="pt").to(device)

    # stage 1: linear probe on frozen, mean-pooled embeddings
    model.eval()
    with torch.no_grad():
        feats = []
        for b in range(0, len(fit_idx), 64):
            enc = encode(fit_idx[b:b + 64])
            hidden = model.encoder(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            feats.append((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0))
        feats = torch.cat(feats)
    labels_all = torch.tensor([int(train_labels[i]) for i in fit_idx], device=device)
    probe_opt = torch.optim.Adam(model.head.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(300):
        loss = loss_fn(model.head(feats), labels_all)
        probe_opt.zero_grad()
        loss.backward()
        probe_opt.step()

    # stage 2: fine-tune everything with a small learning rate, within the budget
    optimizer = torch.optim.AdamW([
        {"params": model.encoder.parameters(), "lr": 5e-3},  # BUG: the head's learning rate on the pretrained encoder
        {"params": model.head.parameters(), "lr": 1e-4},
    ], weight_decay=0.01)
    batch_size, max_epochs = 16, 3
    step_time = 0.0
    for epoch in range(max_epochs):
        model.train()
        order = fit_idx[:]
        random.shuffle(order)
        for b in range(0, len(order), batch_size):
            if time.process_time() + 2 * step_time > deadline:
                break
            t0 = time.process_time()
            idx = order[b:b + batch_size]
            enc = encode(idx)
            labels = torch.tensor([int(train_labels[i]) for i in idx], device=device)
            loss = loss_fn(model(enc["input_ids"], enc["attention_mask"]), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_time = max(step_time, time.process_time() - t0)
        else:
            continue
        break

    predictor = Predictor(model, tokenizer, device, val_idx, None, None)
    acc, f1 = accuracy_f1(predictor.predict([train_texts[i] for i in val_idx]),
                          [int(train_labels[i]) for i in val_idx])
    predictor.val_accuracy, predictor.val_f1 = acc, f1
    return predictor
