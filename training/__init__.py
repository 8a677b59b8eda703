"""The training pipeline: corpus -> dataset -> train -> evaluate -> ship. The steps are the modules here, each run with
``python -m training.<step>`` (also ``average`` and ``warm_start``); their parts are grouped by job: ``recordings``
(where the corpus comes from), ``mixing`` (the audio a run learns from), ``fitting`` (losses and the training loop's
parts, validation among them) and ``scoring`` (metrics, stream mode, plots).

May import ``rtdenoise`` (the models, the engine for evaluation, the errors); nothing in ``rtdenoise`` imports it.
"""
