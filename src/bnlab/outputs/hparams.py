"""TensorBoard's HParams dashboard: every run is a session with its hyperparameters (its network,
seed and, in a sweep, its grid cell's values), and the dashboard compares the runs by the last
value of the curves they log.

The experiment (each hyperparameter with the values it takes, and the metrics) is written once,
in an event file of the log directory itself (TensorBoard's run "."); each run's event file
starts its session at its first evaluation and ends it when the run ends (failed if it
diverged). The plugin reads a metric as
the last value of that scalar tag in the session's run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from tensorboardX.proto.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName
from tensorboardX.proto.api_pb2 import Status as SessionStatus
from tensorboardX.proto.plugin_hparams_pb2 import (
    HParamsPluginData,
    SessionEndInfo,
    SessionStartInfo,
)
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

# a hyperparameter's value as the dashboard shows it
HParamValue = str | float | bool
PLUGIN = "hparams"
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"


def _summary(tag: str, data: HParamsPluginData) -> Summary:
    plugin = SummaryMetadata.PluginData(plugin_name=PLUGIN, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def _type(values: Sequence[HParamValue]) -> int:
    if all(isinstance(v, bool) for v in values):
        return DataType.DATA_TYPE_BOOL
    if all(isinstance(v, float | int) and not isinstance(v, bool) for v in values):
        return DataType.DATA_TYPE_FLOAT64
    return DataType.DATA_TYPE_STRING


def experiment(
    sessions: Sequence[Mapping[str, HParamValue]], metrics: Mapping[str, str]
) -> Summary:
    """The experiment: every hyperparameter of ``sessions`` with the values they give it (in
    first-seen order), and ``metrics`` (scalar tag -> description)."""
    values: dict[str, list[HParamValue]] = {}
    for hparams in sessions:
        for name, value in hparams.items():
            if value not in values.setdefault(name, []):
                values[name].append(value)
    infos = []
    for name, seen in values.items():
        info = HParamInfo(name=name, type=_type(seen))
        info.domain_discrete.extend(seen)
        infos.append(info)
    metric_infos = [
        MetricInfo(name=MetricName(tag=tag), display_name=tag, description=why)
        for tag, why in metrics.items()
    ]
    exp = Experiment(hparam_infos=infos, metric_infos=metric_infos, time_created_secs=time.time())
    return _summary(EXPERIMENT_TAG, HParamsPluginData(experiment=exp))


def session_start(hparams: Mapping[str, HParamValue], group: str) -> Summary:
    """A run's session (``group``: the runs the dashboard averages together, e.g. a network and
    grid cell over seeds)."""
    info = SessionStartInfo(group_name=group, start_time_secs=time.time())
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[name].number_value = float(value)
        else:
            info.hparams[name].string_value = str(value)
    return _summary(SESSION_START_TAG, HParamsPluginData(session_start_info=info))


def session_end(diverged: bool) -> Summary:
    status = SessionStatus.STATUS_FAILURE if diverged else SessionStatus.STATUS_SUCCESS
    info = SessionEndInfo(status=status, end_time_secs=time.time())
    return _summary(SESSION_END_TAG, HParamsPluginData(session_end_info=info))
