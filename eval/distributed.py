"""Sharding across processes started by `torchrun` or `accelerate launch` (both set RANK / WORLD_SIZE)."""

from __future__ import annotations

import os
from dataclasses import dataclass

LOCAL_LAUNCH = "VMC_LOCAL_LAUNCH"  # set in the workers of launch_local


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None = None) -> str:
        import torch

        if requested:
            return requested
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"


def init() -> DistInfo:
    """Read the launcher's environment and join the process group (gloo: it serves only barriers here)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1:
        import torch.distributed

    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return info


def barrier(info: DistInfo):
    if info.world_size > 1:
        import torch.distributed

        from eval.errors import UserError

        try:
            torch.distributed.barrier()
        except RuntimeError:  # gloo: a peer closed the connection
            if os.environ.get(LOCAL_LAUNCH):  # launch_local reports the worker that stopped first: one line, not two
                raise SystemExit(2) from None
            raise UserError(f"rank {info.rank}: another worker process stopped (see its error); finished items "
                            "are kept: rerun the same command to resume") from None


def shutdown(info: DistInfo):
    if info.world_size > 1:
        import torch.distributed

    if info.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def total_threads() -> int:
    import torch

    return torch.get_num_threads()


def launch_local(jobs: int, module: str, argv: list[str], threads: int, lock_fd: int | None = None,
                 interrupted: str = "finished items are kept; rerun the same command to resume") -> int:
    """Run `python -m module argv` as `jobs` ranks on this machine, with `threads` CPU threads each, as
    torchrun would; wait for all of them, and stop the others as soon as one fails. A worker that fails prints
    its own error; one killed by a signal is reported here. `lock_fd`: the run folder's lock, inherited by the
    workers (eval.rundir.WriterLock); `interrupted`: what to say on Ctrl-C. Returns the exit status."""
    import socket
    import subprocess
    import sys
    import time

    import torch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gpus = torch.cuda.device_count()
    print(f"{module}: {jobs} worker processes, {threads} thread(s) each", file=sys.stderr)
    procs = []
    for rank in range(jobs):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(jobs), "LOCAL_RANK": str(rank % max(1, gpus)),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": str(threads),
               "VMC_INNER_BARS": "0", LOCAL_LAUNCH: "1"}  # one `items` bar per worker: inner bars would overwrite them
        if lock_fd is not None:
            from eval.rundir import LOCK_FD_ENV

            env[LOCK_FD_ENV] = str(lock_fd)
        procs.append(subprocess.Popen([sys.executable, "-m", module, *argv], env=env,
                                      pass_fds=() if lock_fd is None else (lock_fd,)))
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
            if failed or all(c == 0 for c in codes):
                break
            time.sleep(0.2)
    except KeyboardInterrupt:  # the workers got the same signal: let them save and exit, quietly
        failed = [(None, 130)]
        print(f"interrupted: {interrupted}", file=sys.stderr)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait()
    if not failed:
        return 0
    rank, code = next((f for f in failed if f[1] < 0), failed[0])  # a silent death first: nobody else reports it
    if code < 0:  # killed by a signal (out of memory, kill -9): it could not say so itself
        print(f"error: {module}: worker {rank} was killed by signal {-code}; finished items are kept: rerun the "
              "same command to resume", file=sys.stderr)
        return 128 - code
    return code
