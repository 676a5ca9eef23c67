"""Simulators that stand in for real services in fast tests and the demo.

``connect``/``rest``/``server``: a Kafka Connect cluster (distributed mode) over real HTTP;
``scenario``: a seeded story of failures and recoveries for the demo and benchmarks.
"""

from simulator.connect import (
    FAILED,
    PAUSED,
    RESTARTING,
    RUNNING,
    STOPPED,
    UNASSIGNED,
    RebalanceMode,
    SimCluster,
    connector_trace,
    task_trace,
)
from simulator.server import Fault, FaultKind, SimConnectServer, SimThread, run_in_thread

__all__ = [
    "FAILED",
    "PAUSED",
    "RESTARTING",
    "RUNNING",
    "STOPPED",
    "UNASSIGNED",
    "Fault",
    "FaultKind",
    "RebalanceMode",
    "SimCluster",
    "SimConnectServer",
    "SimThread",
    "connector_trace",
    "run_in_thread",
    "task_trace",
]
