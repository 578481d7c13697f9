"""cvbench-maxpool: a cvbench head plugin (a template to copy)."""

from .head import MaxPoolHead

__all__ = ["MaxPoolHead"]
