import json

from grader.authoring import Fail, case, notebook


@case(points=1, timeout=90)
def executes(ctx):
    """the notebook runs in the sandbox with nbclient and its values are read back"""
    nb = ctx.sub.execute_notebook(timeout=80, append=["import json; print('RESULT=' + json.dumps({'answer': answer}))"])
    ctx.artifact("executed.ipynb", "application/x-ipynb+json", json.dumps(nb).encode())
    errs = notebook.errors(nb)
    if errs:
        raise Fail(f"cell {errs[0]['cell']} raised {errs[0]['ename']}: {errs[0]['evalue']}")
    out = notebook.cell_text(nb, -1)
    if "RESULT=" not in out:
        raise Fail(f"no result printed: {out!r}")
    value = json.loads(out.split("RESULT=", 1)[1])
    ctx.metric("answer", value["answer"])
    if value["answer"] != ctx.ref.answer:
        raise Fail(f"answer is {value['answer']}, expected {ctx.ref.answer}")


@case(points=1, timeout=90)
def isolated_kernel(ctx):
    """the kernel has no network beyond loopback"""
    nb = ctx.sub.execute_notebook(timeout=80, append=[
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=2); print('NET=open')\n"
        "except OSError as e:\n    print('NET=closed')"])
    if "NET=closed" not in notebook.stream_text(nb):
        raise Fail("the kernel reached the network")
