def probe(arg=None):
    return {"ok": True}
