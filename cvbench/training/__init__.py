"""The two training stages and the one loop they share.

- :mod:`.loop`: the epoch / resume / stop loop, optimiser steps, the loss monitor.
- :mod:`.pretrain`: self-supervised pre-training of one branch's backbone.
- :mod:`.finetune`: cross-view fine-tuning of the two-branch network.
- :mod:`.resume`: the saved training state, stop signals, random states.
- :mod:`.checkpoint`: weights in safetensors, checked against the module they load into.
"""
