"""The training pipeline: corpus -> dataset -> train -> evaluate -> ship, one step per group of modules
(each module's docstring names its step). Run each step with ``python -m training.<module>``.

May import ``rtdenoise`` (the models, the engine for evaluation, the errors); nothing in ``rtdenoise`` imports it.
"""
