"""A set model on a bag's raw records (DeepSets; attention pooling as an option).

Every record of a draw (a pseudo-bag, or a whole bag) becomes a vector: the kind's numeric
columns log-scaled (counts, sizes, the gap to the previous record of the draw) and its
categorical columns embedded (values hashed into ``buckets``, so codes of any Bags agree). A
small per-record network maps each to ``hidden`` units; pooling over the draw's records is
permutation-invariant and runs on the CSR segments without padding (mean and max with
:mod:`alchemy_torch.ops` segment reductions, or attention as in Ilse et al. 2018), then an
MLP head gives the draw's logit. ``with_features``: the draw's hand-made feature vector
(log-scaled, standardised) joins the pooled embedding.

Training (:meth:`SetNet.fit_bags`) goes through ``method=original`` (the training targets'
whole bags every epoch) or ``method=online`` (the originals and that epoch's fresh draws);
early stopping on a validation split by
target, scored on its originals and fixed draws. Batches are segments of the Bags' tensors on
the device. Randomness (split, weights, dropout, shuffling) derives from ``random_state``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import Tensor, nn

from alchemy_torch import resolve_device
from alchemy_torch.bags import Bags, _vocab_of
from alchemy_torch.models.base import check_int, check_real
from alchemy_torch.models.dnn import (
    SHUFFLE_STREAM,
    SPLIT_STREAM,
    TORCH_STREAM,
    BestWeights,
    EpochData,
    _quiet,
    _seeded,
    _torch_threads,
    signed_log,
    validation_split,
)
from alchemy_torch.ops import segment as seg
from alchemy_torch.params import Params
from alchemy_torch.resample import Draws, derive_seed

__all__ = ["SetNet", "SetModule", "record_inputs"]

#: categorical columns per kind, embedded: (column, how its value is bucketed)
CATEGORICAL = {
    "flows": ("proto", "dport", "flags"),
    "http": ("method", "status", "host"),
    "dns": ("qtype", "rcode"),
}
POOLINGS = ("meanmax", "attention")


def _log(x: Tensor) -> Tensor:
    return torch.log1p(x.to(torch.float32).clamp(min=0))


def _text_length(bags: Bags, column: str) -> Tensor:
    """(N,) length of the text of a categorical column at every record."""
    vocab = pd.Series(bags.vocab[_vocab_of(bags.kind, column)], dtype=object).astype(str)
    lengths = torch.from_numpy(vocab.str.len().to_numpy(np.int64, copy=True))
    return lengths.to(bags.device)[bags.columns[column]]


def record_inputs(bags: Bags, buckets: int) -> tuple[Tensor, Tensor]:
    """((N, F) float32 numeric, (N, C) int64 categorical buckets) of every record of ``bags``.

    Numeric: log(1 + x) of the kind's counts and sizes (flows: packets, bytes, bytes per
    packet, duration, direction; http: bytes out and in, path, query and user-agent lengths,
    referrer present; dns: answers, mean TTL, name length). Categorical: ``CATEGORICAL``, each
    value hashed into ``buckets`` (ports below 1024 by number, others in two ranges; HTTP status
    by number). Computed once per Bags (cached).
    """

    def build():
        c = bags.columns
        if bags.kind == "flows":
            pkts, size = c["pkts"].clamp(min=1), c["bytes"]
            duration = torch.nan_to_num(c["duration"], nan=0.0) if "duration" in c else size * 0
            inbound = (c["dst"] == c["server"]).float()
            numeric = [_log(c["pkts"]), _log(size), _log(size / pkts), _log(duration), inbound]
        elif bags.kind == "http":
            numeric = [_log(c["bytes_out"]), _log(c["bytes_in"])]
            numeric += [_log(_text_length(bags, k)) for k in ("path", "query", "user_agent")]
            numeric += [(_text_length(bags, "referrer") > 0).float()]
        else:
            answers = seg.segment_lengths(bags.ragged_offsets)
            ttl = seg.segment_mean(bags.ragged["ttls"], bags.ragged_offsets)
            numeric = [_log(answers), _log(ttl), _log(_text_length(bags, "query"))]
        categorical = [_bucketed(bags, column, buckets) for column in CATEGORICAL[bags.kind]]
        return torch.stack(numeric, 1).float(), torch.stack(categorical, 1)

    return bags.cached(f"setnet.records.{buckets}", build)


def _bucketed(bags: Bags, column: str, buckets: int) -> Tensor:
    """(N,) int64 bucket in [0, buckets) of a column's value at every record."""
    values = bags.columns[column]
    if column == "dport":  # well-known ports by number, then registered, then dynamic
        values = torch.where(values < 1024, values, 1024 + (values >= 49152).long())
        return values % buckets
    if column == "status":
        return values % buckets
    vocab = bags.vocab[_vocab_of(bags.kind, column)]
    hashed = pd.util.hash_array(np.asarray(vocab, dtype=object).astype(str).astype(object))
    return torch.as_tensor((hashed % np.uint64(buckets)).astype(np.int64)).to(bags.device)[values]


class SetModule(pl.LightningModule):
    """Logit of a draw from its records: per-record network, pooling over CSR segments, head.

    ``forward(numeric (R, F), categorical (R, C), offsets (P+1,), features (P, D) or None)``
    -> (P,); a draw without records pools to zeros (its logit comes from its size and
    features).
    """

    def __init__(
        self,
        n_numeric: int,
        n_categorical: int,
        buckets: int,
        n_features: int = 0,
        embedding: int = 8,
        hidden: int = 64,
        pooling: str = "meanmax",
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
    ):
        super().__init__()
        self.embed = nn.ModuleList(nn.Embedding(buckets, embedding) for _ in range(n_categorical))
        width = n_numeric + n_categorical * embedding
        self.record = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.pooling = pooling
        if pooling == "attention":
            self.attend = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        pooled = (2 if pooling == "meanmax" else 1) * hidden + 1 + n_features
        self.head = nn.Sequential(
            nn.Linear(pooled, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )
        self.lr, self.weight_decay = lr, weight_decay

    def forward(self, numeric, categorical, offsets, features=None) -> Tensor:
        embedded = [e(categorical[:, i]) for i, e in enumerate(self.embed)]
        h = self.record(torch.cat([numeric, *embedded], 1))
        if self.pooling == "meanmax":
            pooled = [seg.segment_mean(h, offsets), seg.segment_max(h, offsets)]
        else:
            pooled = [_attention_pool(self.attend(h).squeeze(1), h, offsets)]
        size = torch.log1p(offsets.diff().to(h.dtype)).unsqueeze(1)
        parts = [*pooled, size] + ([] if features is None else [features])
        return self.head(torch.cat(parts, 1)).squeeze(1)

    def _loss(self, batch) -> Tensor:
        *inputs, y = batch
        return F.binary_cross_entropy_with_logits(self(*inputs), y)

    def training_step(self, batch, batch_idx) -> Tensor:
        return self._loss(batch)

    def validation_step(self, batch, batch_idx) -> None:
        self.log("val_loss", self._loss(batch), batch_size=len(batch[-1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def _attention_pool(score: Tensor, h: Tensor, offsets: Tensor) -> Tensor:
    """(P, H) attention-weighted sum of (R, H) ``h``: softmax of (R,) ``score`` per segment."""
    lengths = offsets.diff()
    top = seg.segment_max(score.detach(), offsets)
    weight = torch.exp(score - torch.repeat_interleave(top, lengths, output_size=score.numel()))
    total = seg.segment_sum(weight, offsets).clamp(min=1e-12)
    weight = weight / torch.repeat_interleave(total, lengths, output_size=score.numel())
    return seg.segment_sum(weight.unsqueeze(1) * h, offsets)


class _Examples:
    """Draws over one Bags with their labels and optional feature rows, cut into batches of
    ``batch_size`` draws: (numeric, categorical, offsets, features, y) segments of the Bags'
    tensors on its device. With a ``generator`` every pass shuffles the draws."""

    def __init__(self, net: "SetNet", bags: Bags, draws: Draws, X, batch_size, generator=None):
        self.net, self.bags, self.draws, self.X = net, bags, draws, X
        self.y = bags.labels[draws.owner].to(torch.float32)
        self.batch_size, self.generator = batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.draws) / self.batch_size)

    def __iter__(self):
        n = len(self.draws)
        order = torch.arange(n, device=self.bags.device)
        if self.generator is not None:
            order = torch.randperm(n, generator=self.generator).to(self.bags.device)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield (*self.net._batch(self.bags, self.draws, index, self.X), self.y[index])


class SetNet(ClassifierMixin, Params, BaseEstimator):
    """DeepSets over a draw's raw records, trained by epochs (``method=original`` or
    ``method=online``).

    ``pooling``: "meanmax" (mean and max over the records) or "attention" (Ilse et al.
    2018). ``with_features``: join the draw's feature vector. ``buckets``: hash buckets per
    categorical column. Training as the DNN (Adam, BCE, early stopping with ``patience`` on a
    ``validation_fraction`` split by target; ``batch_size`` draws per batch). ``device``:
    "auto", "cpu", "cuda[:N]".

    Fitted: ``module_`` (:class:`SetModule`, eval mode), ``device_``, ``n_epochs_``,
    ``best_val_loss_``, ``classes_``.
    """

    def __init__(
        self,
        hidden: int = 64,
        embedding: int = 8,
        buckets: int = 64,
        pooling: str = "meanmax",
        with_features: bool = False,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        validation_fraction: float = 0.1,
        device: str = "auto",
        num_threads: int | None = 1,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.hidden, self.embedding, self.buckets = hidden, embedding, buckets
        self.pooling, self.with_features = pooling, with_features
        self.dropout, self.lr, self.weight_decay = dropout, lr, weight_decay
        self.batch_size, self.max_epochs, self.patience = batch_size, max_epochs, patience
        self.validation_fraction, self.device = validation_fraction, device
        self.num_threads, self.random_state, self.verbose = num_threads, random_state, verbose
        self._check_params()

    def _check_params(self) -> None:
        for name in ("hidden", "embedding", "buckets", "batch_size", "max_epochs", "patience"):
            check_int(self, name)
        check_int(self, "random_state", low=0)
        check_real(self, "dropout", 0.0, 1.0)
        check_real(self, "validation_fraction", 0.0, 1.0)
        check_real(self, "lr", 0.0, open_low=True)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    # -- the scikit-learn face: records only ---------------------------------------------
    def fit(self, X, y, **_):
        raise ValueError(
            "setnet reads a bag's records, not feature vectors: use method=original (whole "
            "bags) or method=online (fresh draws every epoch)"
        )

    def predict_proba(self, X):
        raise ValueError("setnet scores records: use a method's score (predict_bags)")

    # -- training -------------------------------------------------------------------------
    def fit_bags(self, bags: Bags, X=None, fixed=None, fixed_X=None, epoch_draws=None):
        """Fit on the B training targets of ``bags`` (labels 0/1).

        Every epoch trains on the originals of the training split and, with ``epoch_draws``
        (epoch -> (Draws over ``bags``, (P, D) features or None)), that epoch's fresh draws of
        those targets; the validation targets' originals and ``fixed`` draws (Draws over
        ``bags``) validate. ``X`` (B, D) and ``fixed_X``: their feature vectors, used with
        ``with_features``.
        """
        self._check_params()
        if self.with_features and X is None:
            raise ValueError("setnet.with_features=true needs the bags' feature vectors (X)")
        device = resolve_device(self.device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device_, self.classes_ = device, np.array([0, 1])
        bags = bags if bags.device == device else bags.to(device)
        numeric, _ = record_inputs(bags, self.buckets)
        self.numeric_mean_, self.numeric_std_ = numeric.mean(0), numeric.std(0).clamp(min=1e-6)
        if self.with_features:
            logged = signed_log(torch.as_tensor(X, device=device))
            self.features_mean_, self.features_std_ = logged.mean(0), logged.std(0).clamp(1e-6)
        labels = bags.labels.cpu().numpy()
        held = validation_split(
            labels,
            np.arange(len(bags)),
            self.validation_fraction,
            derive_seed(self.random_state, SPLIT_STREAM),
        )
        held_t = torch.as_tensor(held, device=device)
        originals = Draws.originals(bags)
        shuffle = torch.Generator().manual_seed(derive_seed(self.random_state, SHUFFLE_STREAM))
        X = None if X is None else torch.as_tensor(X, device=device)

        def examples(draws, features, mask, generator=None, batch_size=self.batch_size):
            index = torch.nonzero(mask[draws.owner]).squeeze(1)
            kept = draws.take(index)
            rows = None if features is None else torch.as_tensor(features, device=device)[index]
            return _Examples(self, bags, kept, rows, batch_size, generator)

        def train(epoch: int):
            if epoch_draws is None:
                return examples(originals, X, ~held_t, shuffle)
            fresh, fresh_X = epoch_draws(epoch)
            both = Draws.cat([originals, fresh])
            rows = None if X is None else torch.cat([X, torch.as_tensor(fresh_X, device=device)])
            return examples(both, rows if self.with_features else None, ~held_t, shuffle)

        validation = None
        if held.any():
            parts = [originals] + ([] if fixed is None else [fixed.to(device)])
            rows = None
            if self.with_features:
                rows = (
                    X if fixed is None else torch.cat([X, torch.as_tensor(fixed_X, device=device)])
                )
            validation = examples(Draws.cat(parts), rows, held_t, batch_size=4096)
        best = BestWeights() if validation is not None else None
        callbacks = [EarlyStopping("val_loss", patience=self.patience), best] if best else []
        with (
            _seeded(device, derive_seed(self.random_state, TORCH_STREAM)),
            _quiet(self.verbose),
            _torch_threads(self.num_threads),
        ):
            module = SetModule(
                numeric.shape[1] + 1,
                len(CATEGORICAL[bags.kind]),
                self.buckets,
                X.shape[1] if self.with_features else 0,
                self.embedding,
                self.hidden,
                self.pooling,
                self.dropout,
                self.lr,
                self.weight_decay,
            )
            trainer = pl.Trainer(
                accelerator=device.type,
                devices=[device.index] if device.type == "cuda" else 1,
                max_epochs=self.max_epochs,
                callbacks=callbacks,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=self.verbose,
                enable_model_summary=self.verbose,
                num_sanity_val_steps=0,
                limit_val_batches=1.0 if validation is not None else 0,
                reload_dataloaders_every_n_epochs=1,
            )
            trainer.fit(module, datamodule=EpochData(train, validation))
        module.trainer = None
        self.module_ = module.eval()
        self.n_epochs_ = trainer.current_epoch
        self.best_val_loss_ = best.loss if best is not None else math.nan
        return self

    def predict_bags(self, bags: Bags, draws: Draws | None = None, X=None) -> np.ndarray:
        """(P,) float64 P(malicious) of every draw over ``bags`` (every whole bag when
        ``draws`` is None); ``X`` (P, D) their feature vectors with ``with_features``."""
        if not hasattr(self, "module_"):
            raise RuntimeError("SetNet is not fitted: call fit_bags first")
        bags = bags if bags.device == self.device_ else bags.to(self.device_)
        draws = Draws.originals(bags) if draws is None else draws.to(self.device_)
        X = None if X is None or not self.with_features else torch.as_tensor(X, device=self.device_)
        batches = _Examples(self, bags, draws, X, 4096)
        with torch.inference_mode():
            p = [torch.sigmoid(self.module_(*batch[:-1])).cpu() for batch in batches]
        return torch.cat(p).double().numpy() if p else np.zeros(0)

    def _batch(self, bags: Bags, draws: Draws, index: Tensor, X):
        """(numeric (R, F+1), categorical (R, C), offsets (b+1,), features (b, D) or None) of
        the draws ``index``: their records gathered, the gap to the previous record added."""
        rows, offsets = seg.csr_gather(draws.offsets, index)
        records = draws.rows[rows]
        numeric, categorical = record_inputs(bags, self.buckets)
        numeric = (numeric[records] - self.numeric_mean_) / self.numeric_std_
        ts = bags.columns["ts"][records]
        gap = torch.zeros_like(ts)
        if ts.numel() > 1:
            first = torch.zeros(ts.numel(), dtype=torch.bool, device=ts.device)
            first[offsets[:-1][offsets.diff() > 0]] = True
            gap[1:] = torch.where(first[1:], 0.0, ts[1:] - ts[:-1])
        numeric = torch.cat([numeric, _log(gap).unsqueeze(1)], 1)
        features = None
        if X is not None and self.with_features:
            features = (signed_log(X[index]) - self.features_mean_) / self.features_std_
            features = features.to(torch.float32)
        return numeric, categorical[records], offsets, features
