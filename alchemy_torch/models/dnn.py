"""Multilayer perceptron trained by a Lightning ``Trainer``, behind the scikit-learn API.

METHOD.md §5: d -> 128 -> 64 -> 1, ReLU, dropout 0.2 after each hidden layer, BCE with logits,
Adam (lr 1e-3, weight decay 1e-5), batches of 128, at most 100 epochs, early stopping with
patience 10 on a 10 % validation split made by target (``groups``), so a target's pseudo
vectors never straddle training and validation. The weights of the best validation epoch are
kept (in memory; nothing is written to disk). Inputs are log-scaled (sign(x) log(1 + |x|),
``log_scale``) and standardised by a scaler fitted on the ``original`` rows: counts and sizes
are heavy-tailed, and without the log a test target from an unseen capture lies hundreds of
standard deviations out, where the network extrapolates linearly (IoT-23 capture-grouped: mean
fold ROC-AUC 58 -> 90, experiments/README.md § Online Alchemy).

A model that trains by epochs can see fresh rows every epoch: ``fit(..., epoch_rows=f)``
calls ``f(epoch)`` at the start of every epoch (:class:`EpochData`); see :meth:`DNN.fit`.

Training data stay in memory as tensors on the chosen device and are cut into batches by
:class:`Batches` (no DataLoader workers, no per-sample collation). Randomness (validation
split, weight initialisation, dropout, shuffling) derives from ``random_state``: the same seed
gives identical predictions on a CPU. The global torch generators are seeded only inside a
fork that restores them afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback, EarlyStopping
from pytorch_lightning.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn

from alchemy_torch import resolve_device
from alchemy_torch.models.base import Model, check_int, check_real, fit_scaler, group_classes
from alchemy_torch.resample import derive_seed

__all__ = ["DNN", "MLP", "Batches", "EpochData", "signed_log", "validation_split"]

#: Rows per forward pass when predicting or validating.
PREDICT_BATCH = 1 << 16
#: Seed streams derived from ``random_state``.
SPLIT_STREAM, SHUFFLE_STREAM, TORCH_STREAM = 0, 1, 2


def signed_log(x: Tensor) -> Tensor:
    """sign(x) * log(1 + |x|) elementwise: compresses heavy tails, keeps sign and order."""
    return torch.sign(x) * torch.log1p(x.abs())


def validation_split(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """(n,) bool, True for the rows of the validation groups.

    ``y`` (n,) in {0, 1}; ``groups`` (n,) the group of every row (its class: see
    :func:`~alchemy_torch.models.base.group_classes`). Per class, ``round(fraction * groups)``
    of its groups are drawn uniformly, at least one and always leaving one for training: a
    class with a single group keeps it for training. ``fraction == 0`` gives no validation.
    """
    group_of_row, positive = group_classes(y, groups)
    in_validation = np.zeros(positive.size, dtype=bool)
    if fraction > 0:
        rng = np.random.default_rng(seed)
        for members in (np.flatnonzero(~positive), np.flatnonzero(positive)):
            n_validation = min(max(round(fraction * members.size), 1), members.size - 1)
            if n_validation > 0:
                in_validation[rng.choice(members, n_validation, replace=False)] = True
    return in_validation[group_of_row]


class Batches:
    """Mini-batches of in-memory ``x`` (n, d) and ``y`` (n,), as (x, y) pairs.

    With a ``generator`` (CPU) every pass draws a fresh permutation; without, rows keep their
    order. Used as a Lightning train or validation iterable.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, generator=None):
        self.x, self.y, self.batch_size, self.generator = x, y, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        n = len(self.y)
        order = None
        if self.generator is not None:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
        for start in range(0, n, self.batch_size):
            rows = slice(start, start + self.batch_size)
            if order is not None:
                rows = order[rows]
            yield self.x[rows], self.y[rows]


class EpochData(pl.LightningDataModule):
    """Training batches drawn anew each epoch, fixed validation batches (Lightning reloads the
    training batches every epoch: ``reload_dataloaders_every_n_epochs=1``).

    ``train(epoch)`` -> the epoch's :class:`Batches`; ``held_out``: validation batches or None.
    """

    def __init__(self, train, held_out):
        super().__init__()
        self.train, self.held_out = train, held_out

    def train_dataloader(self):
        return self.train(self.trainer.current_epoch)

    def val_dataloader(self):
        return self.held_out if self.held_out is not None else []


class MLP(pl.LightningModule):
    """Logit of the positive class for standardised inputs (n, d) -> (n,).

    ``n_features`` -> ``hidden`` widths -> 1; ReLU and dropout after each hidden layer;
    BCE-with-logits loss; Adam with weight decay.
    """

    def __init__(
        self,
        n_features: int,
        hidden=(128, 64),
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
    ):
        super().__init__()
        widths = [n_features, *hidden]
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 1))
        self.lr, self.weight_decay = lr, weight_decay

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)

    def _loss(self, batch) -> Tensor:
        x, y = batch
        return F.binary_cross_entropy_with_logits(self(x), y)

    def training_step(self, batch, batch_idx) -> Tensor:
        return self._loss(batch)

    def validation_step(self, batch, batch_idx) -> None:
        self.log("val_loss", self._loss(batch), prog_bar=True, batch_size=len(batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class BestWeights(Callback):
    """Keeps, in memory, the weights of the epoch with the lowest ``val_loss``; restores them."""

    def __init__(self):
        self.loss, self.state = math.inf, None

    def on_validation_end(self, trainer, module) -> None:
        loss = float(trainer.callback_metrics["val_loss"])
        if loss < self.loss:
            self.loss = loss
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_fit_end(self, trainer, module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)


class DNN(Model):
    """The METHOD.md §5 MLP as a scikit-learn classifier, trained by a Lightning ``Trainer``.

    ``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``; one code path for all. ``num_threads``: torch's CPU threads while training
    (``None`` keeps the process setting); batches of 128 rows gain nothing from more threads
    and lose much when cores are shared (parallel cross-validation jobs).
    ``validation_fraction=0`` trains all ``max_epochs`` without early stopping. ``log_scale``:
    sign(x) log(1 + |x|) of every feature before standardisation (see the module).
    ``verbose=False`` keeps Lightning quiet: no progress bar, model summary, device banner or
    hint warnings; nothing is written to disk either way.

    Fitted: ``module_`` (:class:`MLP`, in eval mode, on ``device_``), ``scaler_``,
    ``device_``, ``n_epochs_`` (epochs trained), ``best_val_loss_`` (nan without validation),
    ``classes_``.
    """

    def __init__(
        self,
        hidden=(128, 64),
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 128,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        device: str = "auto",
        num_threads: int | None = 1,
        random_state: int = 0,
        verbose: bool = False,
        log_scale: bool = True,
    ):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose
        self.log_scale = log_scale
        self._check_params()

    def _check_params(self) -> None:
        widths = () if isinstance(self.hidden, str) else self.hidden
        widths = widths if isinstance(widths, Sequence) else ()
        if not widths or not all(isinstance(w, numbers.Integral) and w >= 1 for w in widths):
            raise ValueError(f"hidden must list one or more int widths >= 1, got {self.hidden!r}")
        for name in ("batch_size", "max_epochs", "patience"):
            check_int(self, name)
        check_int(self, "random_state", low=0)
        if self.num_threads is not None:
            check_int(self, "num_threads")
        check_real(self, "dropout", 0.0, 1.0)
        check_real(self, "validation_fraction", 0.0, 1.0)
        check_real(self, "lr", 0.0, open_low=True)
        check_real(self, "weight_decay", 0.0)
        if not (self.device in ("auto", "cpu") or str(self.device).startswith("cuda")):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    def fit(self, X, y, groups=None, original=None, epoch_rows=None):
        """:meth:`Model.fit`, and with ``epoch_rows`` fresh training rows every epoch.

        ``epoch_rows(epoch)`` -> (x (m, d) tensor, y (m,) tensor in {0, 1}, groups (m,)
        tensor): the epoch's extra rows (e.g. features of fresh pseudo-bags), standardised
        with the scaler of the ``original`` rows. With it, an epoch trains on the original rows
        of the training groups and the fresh rows of those groups; the non-original rows of
        ``X`` serve validation only (fixed draws: the curve is comparable across epochs), and
        fresh rows of the validation groups are dropped.
        """
        self._epoch_rows = epoch_rows
        try:
            return super().fit(X, y, groups, original)
        finally:
            del self._epoch_rows

    def _inputs(self, X) -> Tensor:
        """(n, d) float32 model inputs on ``device_`` of (n, d) raw features (array or tensor)."""
        x = torch.as_tensor(X, device=self.device_).to(torch.float64)
        if self.log_scale:
            x = signed_log(x)
        return ((x - self.mean_) / self.scale_).to(torch.float32)

    def _fit(self, X, y, groups, original) -> None:
        device = resolve_device(self.device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device_ = device
        logged = signed_log(torch.as_tensor(X)).numpy() if self.log_scale else X
        self.scaler_ = fit_scaler(logged, original)
        self.mean_, self.scale_ = (
            torch.as_tensor(v, device=device) for v in (self.scaler_.mean_, self.scaler_.scale_)
        )
        validation = validation_split(
            y, groups, self.validation_fraction, derive_seed(self.random_state, SPLIT_STREAM)
        )
        x = self._inputs(X)
        target = torch.as_tensor(y, dtype=torch.float32, device=device)
        mask = torch.as_tensor(validation, device=device)
        shuffle = torch.Generator().manual_seed(derive_seed(self.random_state, SHUFFLE_STREAM))
        train = self._epoch_batches(x, target, groups, validation, original, shuffle)
        if validation.any():
            best = BestWeights()
            callbacks = [EarlyStopping("val_loss", patience=self.patience), best]
            held_out = Batches(x[mask], target[mask], PREDICT_BATCH)
        else:
            if self.validation_fraction > 0:
                warnings.warn(
                    "no validation split possible (each class has fewer than two groups): "
                    f"training all {self.max_epochs} epochs without early stopping",
                    UserWarning,
                    stacklevel=3,
                )
            best, callbacks, held_out = None, [], None
        with (
            _seeded(device, derive_seed(self.random_state, TORCH_STREAM)),
            _quiet(self.verbose),
            _torch_threads(self.num_threads),
        ):
            module = MLP(X.shape[1], self.hidden, self.dropout, self.lr, self.weight_decay)
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
                limit_val_batches=1.0 if held_out is not None else 0,
                reload_dataloaders_every_n_epochs=1 if callable(train) else 0,
            )
            if callable(train):
                trainer.fit(module, datamodule=EpochData(train, held_out))
            else:
                trainer.fit(module, train, held_out)
        module.trainer = None
        self.module_ = module.eval()
        self.n_epochs_ = trainer.current_epoch
        self.best_val_loss_ = best.loss if best is not None else math.nan

    def _epoch_batches(self, x, target, groups, validation, original, shuffle):
        """The training batches: fixed :class:`Batches`, or with ``epoch_rows`` a function
        epoch -> Batches of the training groups' original rows and their fresh rows."""
        keep = torch.as_tensor(~validation, device=x.device)
        if self._epoch_rows is None:
            return Batches(x[keep], target[keep], self.batch_size, shuffle)
        keep &= torch.as_tensor(original, device=x.device)
        base_x, base_y = x[keep], target[keep]
        held_groups = torch.as_tensor(np.unique(groups[validation]), device=x.device)

        def train(epoch: int) -> Batches:
            fresh_x, fresh_y, fresh_groups = self._epoch_rows(epoch)
            mine = ~torch.isin(fresh_groups.to(x.device), held_groups)
            fresh_x, fresh_y = self._inputs(fresh_x[mine]), fresh_y[mine].to(x.device)
            return Batches(
                torch.cat([base_x, fresh_x]),
                torch.cat([base_y, fresh_y.to(torch.float32)]),
                self.batch_size,
                shuffle,
            )

        return train

    def _positive_probability(self, X) -> np.ndarray:
        x = self._inputs(X)
        with torch.inference_mode():
            chunks = [torch.sigmoid(self.module_(chunk)).cpu() for chunk in x.split(PREDICT_BATCH)]
        return torch.cat(chunks).double().numpy()


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int):
    """Seed torch's global CPU generator (and ``device``'s, if CUDA); restore both on exit."""
    cuda = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """torch's intra-op CPU threads set to ``n`` (unless None), restored on exit."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _quiet(verbose: bool):
    """Unless ``verbose``: Lightning's info logging, hint warnings and version notices muted."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PossibleUserWarning)
        # Lightning 2.6 on torch >= 2.10 (a version notice about torch internals, not for users)
        warnings.filterwarnings(
            "ignore", re.escape("`isinstance(treespec, LeafSpec)`"), FutureWarning
        )
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
