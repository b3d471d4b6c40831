"""Write one question spec back as a bank entry (TOML) for the in-browser question editor."""
from __future__ import annotations

import json


def _str(value: str, multiline_ok: bool) -> str:
    if multiline_ok and ("\n" in value or "\\" in value) and "'''" not in value:
        return "'''\n" + value + "'''" if "\n" in value else "'''" + value + "'''"  # exact round trip
    return json.dumps(value, ensure_ascii=False)


def _value(value, top: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _str(value, top)
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and top:
            return "[\n" + "".join(f"  {_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__}")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def spec_to_raw(spec: dict) -> dict:
    raw = {"id": spec["id"], "type": spec["type"], "points": spec["points"]}
    for k in ("title", "topic"):
        if spec.get(k):
            raw[k] = spec[k]
    raw["text"] = spec["text"]
    kind = spec["type"]
    if kind in ("single", "multiple"):
        if kind == "multiple":
            raw["rule"] = spec["rule"]
        choices = []
        for c in spec["choices"]:
            item = {"id": c["id"], "text": c["text"]}
            default = 1.0 if c["correct"] else 0.0
            if c.get("weight") is not None and (kind == "multiple" and spec["rule"] == "weights" or c["weight"] != default):
                item["weight"] = c["weight"]
            else:
                item["correct"] = c["correct"]
            if c.get("feedback"):
                item["feedback"] = c["feedback"]
            choices.append(item)
        raw["choices"] = choices
    elif kind == "truefalse":
        raw["answer"] = spec["answer"]
        for k in ("feedback_true", "feedback_false"):
            if spec.get(k):
                raw[k] = spec[k]
    elif kind == "numeric":
        answers = []
        for a in spec["answers"]:
            item = {k: a[k] for k in ("answer", "min", "max") if k in a}
            for k in ("tolerance", "rel_tolerance"):
                if a.get(k):
                    item[k] = a[k]
            if a.get("weight", 1.0) != 1.0:
                item["weight"] = a["weight"]
            if a.get("feedback"):
                item["feedback"] = a["feedback"]
            answers.append(item)
        if len(answers) == 1 and "weight" not in answers[0] and "feedback" not in answers[0]:
            raw.update(answers[0])
        else:
            raw["answers"] = answers
        if spec.get("unit"):
            raw["unit"] = spec["unit"]
        if spec.get("params"):
            params = {}
            for name, p in spec["params"].items():
                entry = {p["kind"]: p.get("range", p.get("values"))}
                if "size" in p:
                    entry["size"] = p["size"] if len(p["size"]) > 1 else p["size"][0]
                if "round" in p:
                    entry["round"] = p["round"]
                params[name] = entry
            raw["params"] = params
        if spec.get("let"):
            raw["let"] = spec["let"]
    elif kind == "short":
        raw["answers"] = [a["text"] if a["weight"] == 1.0 and not a["feedback"] else
                          {"text": a["text"], "weight": a["weight"], "feedback": a["feedback"]} for a in spec["answers"]]
        if spec.get("regex"):
            raw["regex"] = [r["pattern"] if r["weight"] == 1.0 and not r["feedback"] else r for r in spec["regex"]]
        if spec.get("case_sensitive"):
            raw["case_sensitive"] = True
        if not raw["answers"]:
            del raw["answers"]
    elif kind == "matching":
        raw["pairs"] = [{"left": p["left"], "right": p["right"]} if p["id"] == (chr(ord("a") + i) if i < 26 else f"p{i}")
                        else {"id": p["id"], "left": p["left"], "right": p["right"]} for i, p in enumerate(spec["pairs"])]
        if spec.get("distractors"):
            raw["distractors"] = spec["distractors"]
    elif kind == "code":
        raw.update(pack=spec["pack"], filename=spec["filename"])
        if spec.get("starter"):
            raw["starter"] = spec["starter"]
    if spec.get("explanation"):
        raw["explanation"] = spec["explanation"]
    return raw


def question_to_toml(spec: dict) -> str:
    raw = spec_to_raw(spec)
    lines = ["[[question]]"]
    for k, v in raw.items():
        if isinstance(v, dict) and k in ("params", "let"):
            continue
        lines.append(f"{_key(k)} = {_value(v, top=True)}")
    for k in ("params", "let"):
        if k in raw:
            lines.append("")
            lines.append(f"[question.{k}]")
            for name, v in raw[k].items():
                lines.append(f"{_key(name)} = {_value(v)}")
    return "\n".join(lines) + "\n"
