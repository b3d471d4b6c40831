"""A third correct solution, written the way many tutorials write it: a plain PyTorch loop
(no Trainer), mean pooling over the attention mask (sentence-transformers' pooling) with a linear
head, Adam (not AdamW) with a one-cycle learning-rate schedule, a DataLoader with shuffling, and a
fixed number of epochs with a CPU-time guard. (A [CLS] token with a fresh MLP head, trained
this way on 72 sentences, lands between 0.84 and 0.94 hidden accuracy depending on the random
state: an approach that close to a threshold earns whatever its luck gives it.) It ignores `seed` and never seeds anything: its split, head
initialisation and batch order come from the global random state, which the sandbox seeds
freshly for every submission. A correct approach must get full marks whatever that state is
(`python -m grader check --repeat` grades it many times)."""

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import AutoModel, AutoTokenizer


class MeanPoolClassifier(nn.Module):
    def __init__(self, model_dir):
        super().__init__()
        self.bert = AutoModel.from_pretrained(model_dir)
        self.head = nn.Linear(self.bert.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask):
        tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
        weights = attention_mask.unsqueeze(-1).float()
        pooled = torch.sum(tokens * weights, 1) / torch.clamp(weights.sum(1), min=1e-9)
        return self.head(pooled)


class Model:
    def __init__(self, net, tokenizer, device):
        self.net, self.tokenizer, self.device = net, tokenizer, device
        self.val_indices, self.val_accuracy = [], 0.0

    def predict(self, texts):
        self.net.eval()
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=48, return_tensors="pt")
        preds = []
        with torch.no_grad():
            for ids, mask in zip(enc["input_ids"].split(50), enc["attention_mask"].split(50)):
                preds.append(self.net(ids.to(self.device), mask.to(self.device)).argmax(-1).cpu())
        return torch.cat(preds).tolist()


def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    t0 = time.process_time()
    y = torch.tensor(train_labels)
    val_idx = []
    for label in (0, 1):
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members))]
        val_idx += members[: max(1, int(0.25 * len(members)))].tolist()
    held = set(val_idx)
    fit_idx = [i for i in range(len(train_texts)) if i not in held]

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    net = MeanPoolClassifier(model_dir).to(device)
    enc = tokenizer([train_texts[i] for i in fit_idx], padding=True, truncation=True, max_length=48,
                    return_tensors="pt")
    data = TensorDataset(enc["input_ids"], enc["attention_mask"], y[fit_idx])
    loader = DataLoader(data, batch_size=16, shuffle=True)
    epochs = 4
    optimizer = torch.optim.Adam([{"params": net.bert.parameters(), "lr": 4e-5},
                                  {"params": net.head.parameters(), "lr": 3e-3}])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[4e-5, 3e-3], total_steps=epochs * len(loader),
                                                   pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()
    slowest = 0.0
    for _ in range(epochs):
        net.train()
        for ids, mask, labels in loader:
            if time.process_time() - t0 + 2 * slowest > 0.8 * time_budget_s:
                break
            start = time.process_time()
            loss = loss_fn(net(ids.to(device), mask.to(device)), labels.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            slowest = max(slowest, time.process_time() - start)

    model = Model(net, tokenizer, device)
    model.val_indices = sorted(val_idx)
    guesses = model.predict([train_texts[i] for i in model.val_indices])
    model.val_accuracy = sum(int(g) == int(train_labels[i]) for g, i in zip(guesses, model.val_indices)) / len(val_idx)
    return model
