"""Several processes (hosts) as one JAX runtime: jax.distributed.initialize, nothing home-made.

Every process runs the same launch.py command with its own process id; after initialize,
jax.devices() lists the devices of all processes and config.mesh spans them. On CPU the
cross-process collectives go through gloo (JAX's CPU default has none).
"""

from __future__ import annotations

import jax


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None,
               auto: bool = False) -> bool:
    """Joins the multi-process runtime; returns whether it did.

    With `coordinator` ('host:port' of process 0), `num_processes` and `process_id` are required.
    With `auto` (and no coordinator), JAX reads them from the cluster environment (SLURM, Open MPI,
    Kubernetes / TPU pods). Must run before anything touches a device.
    """
    if coordinator is None and not auto:
        if num_processes not in (None, 1) or process_id not in (None, 0):
            raise ValueError("--num_processes/--process_id need --coordinator=HOST:PORT (or --multihost_auto)")
        return False
    if coordinator is not None and (num_processes is None or process_id is None):
        raise ValueError("--coordinator needs --num_processes and --process_id")
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id={process_id}: must be in [0, --num_processes={num_processes})")
    # Only matters where the CPU is the backend; accelerators use their own collectives (NCCL, ICI).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return True


def is_primary() -> bool:
    """Process 0 writes the workdir's files (metrics, results, predictions); orbax coordinates checkpoints."""
    return jax.process_index() == 0
