"""``SummaryWriter``: PyTorch's ``torch.utils.tensorboard.SummaryWriter`` for chainrule.

Events are TensorBoard's own ``Event`` protobufs written by TensorBoard's ``EventFileWriter`` (a
background thread flushing the queue every ``flush_secs``), so ``tensorboard --logdir runs`` and
TensorBoard's readers see ordinary event files.
"""

import os
import socket
import time
from datetime import datetime

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from . import summary as _summary
from ._graph import graph

__all__ = ["FileWriter", "SummaryWriter"]


class FileWriter:
    """Writes ``Event`` protobufs to one event file in ``log_dir`` (PyTorch's ``FileWriter``)."""

    def __init__(self, log_dir, max_queue=10, flush_secs=120, filename_suffix=""):
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs, filename_suffix)

    def get_logdir(self):
        return self.event_writer.get_logdir()

    def add_event(self, event, step=None, walltime=None):
        event.wall_time = time.time() if walltime is None else float(walltime)
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary, global_step=None, walltime=None):
        self.add_event(Event(summary=summary), global_step, walltime)

    def add_graph(self, graph_def, walltime=None):
        self.add_event(Event(graph_def=graph_def.SerializeToString()), None, walltime)

    def flush(self):
        self.event_writer.flush()

    def close(self):
        self.event_writer.close()


class SummaryWriter:
    """Log scalars, histograms, text and the model graph for TensorBoard.

    ``log_dir`` defaults to ``runs/CURRENT_DATETIME_HOSTNAME`` (plus ``comment``). With ``purge_step``,
    events at and after that step left by an earlier, crashed run are hidden when TensorBoard reads the
    directory. Events are queued (``max_queue``) and flushed every ``flush_secs`` seconds, on
    ``flush()`` and on ``close()``; the writer is also a context manager::

        with SummaryWriter("runs/exp1") as w:
            for step in range(100):
                w.add_scalar("train/loss", loss, step)
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120, filename_suffix=""):
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", stamp + "_" + socket.gethostname() + comment)
        self.log_dir = os.fspath(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()

    def _get_file_writer(self):
        """The main FileWriter, made again after ``close()`` so the writer can be reused."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                step = self.purge_step
                self.file_writer.add_event(Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))
                self.purge_step = None
        return self.file_writer

    def get_logdir(self):
        return self.log_dir

    # --- scalars ---------------------------------------------------------------------------------
    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        """One value of the series ``tag`` at ``global_step`` (a number, or a one-element tensor/array)."""
        summary = _summary.scalar(tag, scalar_value, new_style=new_style, double_precision=double_precision)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Several series in one chart: each key is written, under ``main_tag``, to its own run in the
        subdirectory ``<log_dir>/<main_tag>_<key>`` (``/`` in main_tag becomes ``_``), as PyTorch does."""
        walltime = time.time() if walltime is None else walltime
        logdir = self._get_file_writer().get_logdir()
        for tag, value in tag_scalar_dict.items():
            run_dir = logdir + "/" + main_tag.replace("/", "_") + "_" + tag
            writer = self.all_writers.get(run_dir)
            if writer is None:
                writer = FileWriter(run_dir, self.max_queue, self.flush_secs, self.filename_suffix)
                self.all_writers[run_dir] = writer
            writer.add_summary(_summary.scalar(main_tag, value), global_step, walltime)

    # --- histograms ------------------------------------------------------------------------------
    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None):
        """A histogram of ``values`` (a tensor, an array or a list): ``bins`` is 'tensorflow' (TensorFlow's
        exponential buckets) or anything ``numpy.histogram`` accepts ('auto', 'fd', a count, edges)."""
        self._get_file_writer().add_summary(_summary.histogram(tag, values, bins, max_bins), global_step, walltime)

    def add_histogram_raw(self, tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts,  # noqa: A002
                          global_step=None, walltime=None):
        summary = _summary.histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    # --- text and graph --------------------------------------------------------------------------
    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Markdown text, shown by TensorBoard's text tab (stored under ``tag + '/text_summary'``)."""
        self._get_file_writer().add_summary(_summary.text(tag, text_string), global_step, walltime)

    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True):
        """The graph of ``model`` run on ``input_to_model`` (a tensor or a tuple of arguments).

        The model is run once, in eval mode and without gradients, under chainrule's recording tracer;
        each primitive op becomes a node named by the module scopes it ran in, which TensorBoard's graph
        tab folds into one box per module. ``use_strict_trace`` is accepted for PyTorch compatibility.
        """
        if input_to_model is None:
            args = ()
        elif isinstance(input_to_model, (tuple, list)):
            args = tuple(input_to_model)
        else:
            args = (input_to_model,)
        self._get_file_writer().add_graph(graph(model, args, verbose))

    # --- lifetime --------------------------------------------------------------------------------
    def flush(self):
        """Write every pending event to disk now."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()

    def close(self):
        """Flush and close every event file; a later ``add_*`` starts a new file."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()
