"""Drift control: each worker times one fixed reference model at its start and every ``every``
trials; a reference more than ``DRIFT_LIMIT`` away from the first is a drift (a board warming up
and throttling, a host getting busy). A drift is recorded in the study (user attribute
``drift:DEVICE``, shown by ``search status``), and the trials this worker timed since the last
good reference are timed again once the reference is back within the limit (their new medians go
to the measurements table and to ``retimed:DEVICE``; a finished trial's objective values cannot
change, so the front keeps the first figures and status says how far they moved). A reference
that stays drifted becomes the new baseline, and that is recorded too.
"""

from __future__ import annotations

import datetime
import time

DRIFT_LIMIT = 0.05
SETTLE_TRIES, SETTLE_SECONDS = 3, 5.0


def reference_tflite(image_size: int, channels: int) -> bytes:
    """The reference: an untrained standard U-Net (depth 3, width 8) at the study's input size, float32."""
    from space.convert import to_tflite
    from space.model import build
    from space.spec import uniform

    return to_tflite(build(uniform("standard", depth=3, base_width=8, input_size=image_size, channels=channels), seed=0))


class DriftWatch:
    """One worker's reference timings of one device; see the module docstring."""

    def __init__(self, study, device, protocol, store, reference: bytes, every: int):
        self.study, self.device, self.protocol, self.store = study, device, protocol, store
        self.reference, self.every = reference, every
        self.baseline = self._time()
        self.since_good: list[tuple[int, int]] = []  # (trial number, trial id) timed since the last good reference

    def _time(self) -> float:
        return float(self.device.measure(self.reference, self.protocol)["median_ms"])

    def timed(self, number: int, trial_id: int) -> None:
        """After a trial was timed: every ``every`` trials, time the reference and act on a drift."""
        self.since_good.append((number, trial_id))
        if len(self.since_good) < self.every:
            return
        now = self._time()
        if abs(now / self.baseline - 1) > DRIFT_LIMIT:
            self._drifted(now)
        self.since_good = []

    def _drifted(self, first: float) -> None:
        now = first
        for _ in range(SETTLE_TRIES):
            time.sleep(SETTLE_SECONDS)
            now = self._time()
            if abs(now / self.baseline - 1) <= DRIFT_LIMIT:
                break
        settled = abs(now / self.baseline - 1) <= DRIFT_LIMIT
        self._append(f"drift:{self.device.name}", {
            "after_trial": self.since_good[-1][0], "baseline_ms": self.baseline, "reference_ms": first,
            "settled_ms": now, "settled": settled, "at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        })
        if settled:
            self._retime()
        else:
            self.baseline = now  # it stays so: compare what comes next with what the device does now

    def _retime(self) -> None:
        retimed = {}
        for number, trial_id in self.since_good:
            model = self.store.artifact(trial_id)
            if model is None:
                continue  # stopped early or infeasible: nothing converted was kept
            stats = self.device.measure(model, self.protocol)
            self.store.save_measurement(trial_id, self.device.name, self.device.info(), stats.get("protocol", {}),
                                        {**stats, "retimed_after_drift": True})
            retimed[str(number)] = stats["median_ms"]
        if retimed:
            self._append(f"retimed:{self.device.name}", retimed)

    def _append(self, key: str, entry) -> None:
        stored = self.study.user_attrs.get(key)
        if isinstance(entry, dict) and key.startswith("retimed:"):
            self.study.set_user_attr(key, {**(stored or {}), **entry})
        else:
            self.study.set_user_attr(key, [*(stored or []), entry])
