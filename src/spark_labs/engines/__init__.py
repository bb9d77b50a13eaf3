"""Inference engines: one registry of specs, one launcher."""

from .engine_spec import Availability, EngineSpec
from .launcher import EngineHandle, launch, likely_cause, running_engines, stop_all
from .multinode import (
                        ClusterPlan,
                        LocalRayCluster,
                        MultiNodeEngine,
                        MultiNodeError,
                        Node,
                        NodeLostError,
                        launch_local,
                        launch_spark,
                        multinode_engines,
                        preflight,
                        spark_plan,
                        split_problem,
)
from .ports import free_port, port_holder, port_is_free
from .profile_args import spark_command
from .readiness import docker_usable
from .registry import ENGINES, engine_args, first_runnable_engine, resolve_engine

__all__ = ["Availability", "ClusterPlan", "LocalRayCluster", "MultiNodeEngine", "MultiNodeError", "Node",
           "NodeLostError", "launch_local", "launch_spark", "multinode_engines", "preflight", "spark_plan",
           "split_problem", "ENGINES", "EngineHandle", "EngineSpec", "docker_usable", "engine_args",
           "first_runnable_engine", "free_port", "launch", "likely_cause", "port_holder", "port_is_free",
           "resolve_engine", "running_engines", "spark_command", "stop_all"]
