"""A tqdm progress bar over training epochs, shown by estimators with ``verbose=1``."""
from __future__ import annotations

import keras
from tqdm.auto import tqdm


class EpochProgressBar(keras.callbacks.Callback):
    """One bar for the whole fit: an update per epoch, with the latest losses beside it.

    Keras' own ``verbose=1`` draws a bar per epoch, which floods a terminal over hundreds of
    short epochs; early stopping usually ends the bar before ``epochs``, and the bar says so.
    """

    def __init__(self, epochs: int, description: str = "fit", keys=("loss", "val_loss")):
        super().__init__()
        self.epochs = epochs
        self.description = description
        self.keys = tuple(keys)
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.epochs, desc=self.description, unit="epoch", leave=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix({k: f"{float(logs[k]):.4g}" for k in self.keys if k in logs}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            if self.bar.n < self.epochs:
                self.bar.set_description(f"{self.description} (early stop)")
            self.bar.close()
