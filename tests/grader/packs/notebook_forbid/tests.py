"""Engine-test driver: the notebook is executed in its kernel with the pack's [forbid] stubs; the
executed notebook comes back as an artifact (cell outputs and execution counts as the student wrote it)."""
import json

from grader.authoring import Fail, case, notebook


@case(points=1, timeout=90)
def executes(ctx):
    """the notebook computes answer without the forbidden APIs"""
    nb = ctx.sub.execute_notebook(timeout=80, append=["import json; print('RESULT=' + json.dumps({'answer': answer}))"])
    ctx.artifact("executed.ipynb", "application/x-ipynb+json", json.dumps(nb).encode())
    errs = notebook.errors(nb)
    if errs:
        raise Fail(f"cell {errs[0]['cell']} raised {errs[0]['ename']}: {errs[0]['evalue']}")
    value = json.loads(notebook.cell_text(nb, -1).split("RESULT=", 1)[1])
    if value["answer"] != ctx.ref.answer:
        raise Fail(f"answer is {value['answer']}, expected {ctx.ref.answer}")
