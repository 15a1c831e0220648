"""Training a face embedding network on a curated manifest or a folder tree.

Pieces: :mod:`~curate.train.config` (``TrainConfig``), :mod:`~curate.train.data` (datasets, augmentation,
P x K sampler), :mod:`~curate.train.backbones`, :mod:`~curate.train.heads` (softmax and margin heads),
:mod:`~curate.train.losses` (centre, contrastive, triplet with online mining), :mod:`~curate.train.loop`
(the training run, checkpoints, resume) and :mod:`~curate.train.export` (the embedder format).
"""
