"""A second correct solution in another style: transformers' AutoModelForSequenceClassification
(the [CLS] token through BERT's pooler and a classifier), only the top two encoder layers
unfrozen, a linear warm-up/decay schedule, an sklearn-free split done with torch.randperm, and
epochs sized from a measured first step rather than checked at every step."""

import time

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup


class Classifier:
    def __init__(self, model, tokenizer, device):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.val_indices, self.val_accuracy = [], 0.0

    def predict(self, texts):
        self.model.eval()
        labels = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                enc = self.tokenizer(texts[i:i + 32], padding="longest", truncation=True, max_length=40,
                                     return_tensors="pt").to(self.device)
                labels += self.model(**enc).logits.argmax(dim=1).cpu().tolist()
        return labels


def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    t_start = time.process_time()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    labels = torch.tensor(train_labels)
    val, fit = [], []
    for c in (0, 1):
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=gen)].tolist()
        k = max(1, len(members) // 4)
        val += members[:k]
        fit += members[k:]

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2).to(device)
    for p in model.bert.parameters():
        p.requires_grad = False
    for layer in model.bert.encoder.layer[-2:]:
        for p in layer.parameters():
            p.requires_grad = True
    for p in model.bert.pooler.parameters():
        p.requires_grad = True
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)

    batch = 8
    fit_t = torch.tensor(fit)

    def step(idx):
        enc = tok([train_texts[i] for i in idx], padding="longest", truncation=True, max_length=40,
                  return_tensors="pt").to(device)
        out = model(**enc, labels=labels[idx].to(device))
        out.loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)

    steps_per_epoch = (len(fit) + batch - 1) // batch
    sched = get_linear_schedule_with_warmup(opt, steps_per_epoch // 2, steps_per_epoch * 6)
    model.train()
    t0 = time.process_time()
    order = fit_t[torch.randperm(len(fit), generator=gen)].tolist()
    step(order[:batch])
    per_step = time.process_time() - t0
    left = 0.75 * time_budget_s - (time.process_time() - t_start)
    total_steps = max(1, min(steps_per_epoch * 6, int(left / max(per_step, 1e-3))))
    done = 1
    while done < total_steps:
        order = fit_t[torch.randperm(len(fit), generator=gen)].tolist()
        for b in range(0, len(order), batch):
            if done >= total_steps:
                break
            step(order[b:b + batch])
            done += 1

    clf = Classifier(model, tok, device)
    clf.val_indices = sorted(val)
    guesses = clf.predict([train_texts[i] for i in clf.val_indices])
    clf.val_accuracy = sum(int(g == train_labels[i]) for g, i in zip(guesses, clf.val_indices)) / len(val)
    return clf
