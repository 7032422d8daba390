"""``replay:<run folder>``: answers from a previous run's records (re-scoring, tests, demos).

Requests are matched by (task, sample id, repeat), not by cache key: the key includes the model
identity, and the point of replay is to stand in for that model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.backends import BackendSpec
from evalkit.backends.base import BackendBase
from evalkit.errors import BackendError, EvalkitError
from evalkit.store import RECORDS_FILE, RunFolder
from evalkit.types import BackendInfo, Completion, Request


class ReplayBackend(BackendBase):
    max_concurrency = 1
    cacheable = False  # answers already live in the run folder

    def __init__(self, run_dir: Path, batch_size: int = 64) -> None:
        self.batch_size = batch_size  # answers are a dict lookup: --concurrency only sizes the batches
        folder = RunFolder(run_dir)
        if not folder.records_path.is_file():
            raise BackendError(
                f"replay:{run_dir}: no {RECORDS_FILE} there; give a run folder written by `evalkit run`"
            )
        self.run_dir = run_dir
        self._answers: dict[tuple[str, str, int], Completion] = {
            rec.slot: rec.completion for rec in folder.records() if rec.ok
        }
        try:
            original = ((folder.manifest or {}).get("backend") or {}).get("identity") or "unknown"
        except EvalkitError:  # a broken manifest does not stop a replay of the records
            original = "unknown"
        self.info = BackendInfo(
            backend="replay", model=str(run_dir), revision=None, extra={"replays": original}
        )

    @classmethod
    def from_spec(
        cls, spec: BackendSpec, options: dict[str, Any], concurrency: int | None = None
    ) -> ReplayBackend:
        if options:
            raise BackendError(f"--model-arg {next(iter(options))}: the replay backend takes no options")
        return cls(Path(spec.target).expanduser(), batch_size=concurrency or 64)

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        out = []
        for r in reqs:
            c = self._answers.get((r.task, r.sample_id, r.repeat))
            if c is None:
                msg = f"no stored answer for {r.task}/{r.sample_id} repeat {r.repeat} in {self.run_dir}"
                out.append(Completion.failed(msg, "fatal"))
            else:
                out.append(c)
        return out

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        return await self.generate(reqs)
