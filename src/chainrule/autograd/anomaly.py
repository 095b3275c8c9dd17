"""Anomaly detection: remember where each node was created and stop at the first NaN gradient."""

from .grad_mode import state


class detect_anomaly:
    """Inside, backward nodes keep their creation traceback, and a backward step that produces NaN
    (or inf) raises an error naming the forward op and showing where it was called."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._previous = (state.anomaly, state.anomaly_check_nan)
        state.anomaly, state.anomaly_check_nan = True, self.check_nan

    def __exit__(self, *exc):
        state.anomaly, state.anomaly_check_nan = self._previous
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:
    """Switch anomaly detection on or off (at once; restores the old mode when used with ``with``)."""

    def __init__(self, mode, check_nan=True):
        self._previous = (state.anomaly, state.anomaly_check_nan)
        state.anomaly, state.anomaly_check_nan = bool(mode), check_nan

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        state.anomaly, state.anomaly_check_nan = self._previous
        return False


def is_anomaly_enabled():
    return state.anomaly
