"""The module the `cvbench` entry point names: it implements cvbench's hooks."""

from cvbench.contract.hookspecs import hookimpl

from .head import MaxPoolHead


@hookimpl
def register_heads(register):
    register("maxpool", MaxPoolHead, summary="global max pool + linear (cvbench-maxpool)")
