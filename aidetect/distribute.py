"""Devices and tf.distribute: one process, several local GPUs, or several machines (TF_CONFIG).

TF_CONFIG is the standard cluster description, one per process, e.g. for worker 0 of two:
    {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}
"""
import json
import os

import tensorflow as tf


def configure_gpus(gpu_memory: str) -> int:
    """Memory growth (default) or a fixed limit in MiB per GPU; returns the GPU count (0 on CPU)."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        if gpu_memory == "growth":
            tf.config.experimental.set_memory_growth(gpu, True)
        else:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(gpu_memory))])
    return len(gpus)


def _tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def _task() -> dict:
    return _tf_config().get("task", {})


class _KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose reduce() does what Keras 3's fit and evaluate expect.

    Keras 3 reduces whole (images, labels) batches, and averages per-replica losses and metrics
    with axis=0; the collective reduce takes one value at a time and reads axis=0 as a dimension
    of the value, which a scalar lacks (keras-team/keras#20585). Here: leaf by leaf, across
    replicas only, as Keras does for MirroredStrategy.
    """

    def reduce(self, reduce_op, value, axis=None):
        reduce_one = super().reduce
        return tf.nest.map_structure(lambda leaf: reduce_one(reduce_op, leaf, axis=None), value)


def choose_strategy(gpu_count: int) -> tf.distribute.Strategy:
    """Several machines when TF_CONFIG names a task, several local GPUs, or the default (one device)."""
    if _task():
        return _KerasMultiWorkerStrategy()
    if gpu_count > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """Only the chief (the "chief" task, else worker 0) writes models and logs."""
    task = _task()
    if not task:
        return True
    if "chief" in _tf_config().get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def task_name() -> str:
    """Like "worker-1" for a TF_CONFIG task; "" when running alone."""
    task = _task()
    return f"{task['type']}-{task.get('index', 0)}" if task else ""


def shard_by_data(dataset):
    """Split a dataset between workers by element: its source is a list of paths in memory, not
    files tf.data could split by (the default AUTO policy tries files first, then warns)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
