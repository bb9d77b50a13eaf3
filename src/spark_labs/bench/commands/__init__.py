"""One module per ``spark-labs bench`` sub-command, its flags beside its code: ``add_arguments(parser)`` declares
them, ``run(args)`` runs the command. :mod:`spark_labs.bench.cli` is the table that names them and holds the checks
every command shares; ``shared`` has the flags and helpers several commands take (server, workload, report)."""

from .shared import check_reachable, check_target_flags, console

__all__ = ["check_reachable", "check_target_flags", "console"]
