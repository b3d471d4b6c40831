"""A stand-in for Colab's front-end messaging module, google.colab._message, for the tests.

Colab's own code asks the browser for the live notebook with
    google.colab._message.blocking_request('get_ipynb', request='', timeout_sec=N)
and gets back a dict {'ipynb': <the notebook as JSON>}. This stand-in answers that one request
the same way, with the notebook at $CP_STANDIN_IPYNB (what the "browser" currently shows), and
appends each request it receives to $CP_STANDIN_LOG so the test can see how it was asked.
Any other request raises, as a front end without that handler would.
"""
import json
import os


class MessageError(RuntimeError):
    pass


def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    with open(os.environ["CP_STANDIN_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"type": request_type, "request": request, "timeout_sec": timeout_sec}) + "\n")
    if request_type != "get_ipynb":
        raise MessageError("unknown request " + repr(request_type))
    with open(os.environ["CP_STANDIN_IPYNB"], encoding="utf-8") as fh:
        return {"ipynb": json.load(fh)}
