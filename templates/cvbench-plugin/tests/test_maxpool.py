"""The head passes cvbench's conformance checks, as written and as installed through the entry point."""

import cvbench
from cvbench import testing

from cvbench_maxpool import MaxPoolHead


def test_the_head_conforms():
    testing.check_head(MaxPoolHead, in_channels=32, feature_hw=(4, 16), dim=64)


def test_the_installed_package_registers_maxpool():
    assert "maxpool" in cvbench.plugins()["head"]
    testing.check_head("maxpool")
