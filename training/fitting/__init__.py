"""The training loop's parts: losses (with a differentiable STOI), the run's settings, what it learns from, one
step and what sets it up, validation and the end of an epoch, and data-parallel training."""
