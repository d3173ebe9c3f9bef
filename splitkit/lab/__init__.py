"""The batch-size lab: which batch size and concurrency finish a job soonest, and how sure.

- `tune()` (also `splitkit.tune`): probes the server in use, fits the model, recommends;
- `CostModel` (`lab/model.py`): wall time with an interval, requests and peak memory per
  batch size × concurrency, fitted from measured runs (`Measured`, or `RunHandle`s);
- `what_if` (`lab/whatif.py`, also `splitkit.what_if`): the model's prediction from runs
  you have, two given costs or a fitted model;
- `plot_tuning` (`lab/plot.py`): the prediction, the pick and measured runs on one chart.

Run it against a simulated platform (`EmbeddedServer(simulate=...)`, `splitkit serve
--simulate`) to prototype, and against the real one to decide.
"""

from splitkit.lab.model import PREDICTION_COLUMNS, CostModel, Measured
from splitkit.lab.tune import DEFAULT_BATCH_SIZES, Tuning, tune
from splitkit.lab.whatif import WHAT_IF_COLUMNS, what_if

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "PREDICTION_COLUMNS",
    "WHAT_IF_COLUMNS",
    "CostModel",
    "Measured",
    "Tuning",
    "tune",
    "what_if",
]
