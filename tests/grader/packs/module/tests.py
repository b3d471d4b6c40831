import torch

from grader.authoring import Fail, case, compare


@case(points=1)
def construct_and_count(ctx):
    """instantiate the class remotely and count its parameters"""
    h = ctx.sub.new("TinyNet", 4)
    n = h.num_parameters()
    if n != 4 * 4 + 4:
        raise Fail(f"expected 20 parameters, got {n}")


@case(points=1)
def load_weights_and_forward(ctx):
    """load the reference weights into the remote module and compare the forward pass"""
    ref = ctx.ref.TinyNet(4)
    torch.manual_seed(ctx.seed)
    ref.lin.weight.data.normal_()
    h = ctx.sub.new("TinyNet", 4)
    res = h.load_state_dict(ref.state_dict())
    if res["missing"] or res["unexpected"]:
        raise Fail(f"state dict mismatch: {res}")
    x = torch.randn(3, 4, generator=ctx.rng)
    compare.tensor(h(x), ref(x), "forward", atol=1e-6)
    sd = h.state_dict()
    compare.tensor(sd["lin.weight"], ref.lin.weight.detach(), "lin.weight")


@case(points=1)
def handles_as_arguments_and_attributes(ctx):
    """handles returned by functions, passed back as arguments, attributes read and set"""
    h = ctx.sub.call("make", 4)
    if h.get("scale") != 2.0:
        raise Fail("scale attribute")
    h.set("scale", 3.0)
    x = torch.ones(1, 4)
    y = h.call("forward", x)
    h.set("scale", 1.0)
    z = h(x)
    compare.tensor(y, z * 3.0, "scaled forward", atol=1e-6)


@case(points=1)
def construct_dotted(ctx):
    """construct an importable class inside the sandbox"""
    lin = ctx.sub.construct("torch.nn.Linear", 3, 2, bias=False)
    if lin.num_parameters() != 6:
        raise Fail("torch.nn.Linear(3, 2) should have 6 parameters")
    if ctx.sub.has("nope") or not ctx.sub.has("TinyNet"):
        raise Fail("has()")
